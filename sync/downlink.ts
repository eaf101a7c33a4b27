// The downlink rides the uploader's connection: when the uploads are drained it fetches the
// commands the cloud queued for this gateway (lock/unlock, point writes) and the desired
// config, applies them through the same paths as local requests (RBAC and audit included)
// and acknowledges each. A command applied but not yet acknowledged (the ack was lost) is
// acknowledged again from memory, not applied twice.
import type { Logger } from '../gateway/kernel/log.js';
import type { SyncMetrics } from './metrics.js';
import type { CloudResponse } from './client.js';
import type { CloudCommand, CommandAck, DesiredConfig } from './protocol.js';
import type { SyncConfig } from '../config/sync-schema.js';

export interface CommandTarget {
  apply(cmd: CloudCommand): Promise<CommandAck>;
  stageConfig(desired: DesiredConfig): Promise<CommandAck>;
}

type Call = (method: 'GET' | 'POST', path: string, opts: { body?: string; headers?: Record<string, string> }) => Promise<CloudResponse>;

const REMEMBERED = 1000;
const JSON_HEADERS = { 'content-type': 'application/json' };

export class Downlink {
  private lastPoll = 0;
  private readonly applied = new Map<string, CommandAck>();
  private configVersion = 0;

  constructor(
    private readonly target: CommandTarget,
    private readonly metrics: SyncMetrics,
    private readonly log: Logger,
    private readonly cfg: SyncConfig['commands'],
  ) {}

  /** Fetches and applies pending commands and desired config, at most once per pollMs. */
  async poll(call: Call, now = Date.now()): Promise<void> {
    if (!this.cfg.enabled || now - this.lastPoll < this.cfg.pollMs) return;
    this.lastPoll = now;
    const res = await call('GET', '/api/v1/gateways/me/commands', {});
    if (res.status !== 200) throw new Error(`fetching commands: HTTP ${res.status}`);
    const { commands } = JSON.parse(res.body.toString('utf8')) as { commands: CloudCommand[] };
    for (const cmd of commands) {
      let ack = this.applied.get(cmd.id);
      if (!ack) {
        ack = await this.target.apply(cmd).catch((err: Error) => ({ ok: false, detail: err.message }));
        this.metrics.syncCommands.inc({ kind: String(cmd.kind), result: ack.ok ? 'ok' : 'failed' });
        this.log.info({ command: cmd.id, kind: cmd.kind, ok: ack.ok, detail: ack.detail }, 'sync: cloud command applied');
        if (this.applied.size >= REMEMBERED) this.applied.delete(this.applied.keys().next().value!);
        this.applied.set(cmd.id, ack);
      }
      const r = await call('POST', `/api/v1/gateways/me/commands/${encodeURIComponent(cmd.id)}/ack`, {
        body: JSON.stringify(ack),
        headers: JSON_HEADERS,
      });
      if (r.status >= 300 && r.status !== 404) throw new Error(`acknowledging command ${cmd.id}: HTTP ${r.status}`);
    }
    await this.pollConfig(call);
  }

  private async pollConfig(call: Call): Promise<void> {
    const res = await call('GET', '/api/v1/gateways/me/config', {});
    if (res.status === 204) return;
    if (res.status !== 200) throw new Error(`fetching desired config: HTTP ${res.status}`);
    const desired = JSON.parse(res.body.toString('utf8')) as DesiredConfig;
    if (desired.version <= this.configVersion) return;
    const ack = await this.target.stageConfig(desired).catch((err: Error) => ({ ok: false, detail: err.message }));
    const r = await call('POST', '/api/v1/gateways/me/config/ack', {
      body: JSON.stringify({ version: desired.version, ...ack }),
      headers: JSON_HEADERS,
    });
    if (r.status >= 300) throw new Error(`acknowledging config version ${desired.version}: HTTP ${r.status}`);
    this.configVersion = desired.version;
    this.log.info({ version: desired.version, ok: ack.ok, detail: ack.detail }, 'sync: desired config from the cloud');
  }
}
