// How the gateway carries out what the cloud asks (sync/downlink.ts): a lock command goes
// through the LockController with the "cloud" identity, so the door-group RBAC and the
// access audit are the same as for a local API call; a point write goes to the driver that
// owns the device and is recorded as command.sent / command.failed. A desired config is
// validated and staged next to the data; it takes effect at the next restart.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SiteConfig } from '../config/schema.js';
import type { CommandTarget } from '../sync/downlink.js';
import type { CloudCommand, CommandAck, DesiredConfig } from '../sync/protocol.js';
import { parseConfig } from '../config/site.js';
import type { Actor, LockController } from './locks.js';
import type { Supervisor } from './supervisor.js';
import { commandAudit, type WriteCommand } from './contract/types.js';

export const STAGED_CONFIG_FILE = 'desired-site.yaml';

interface Targets {
  config: SiteConfig;
  dataDir: string;
  locks: LockController;
  supervisor: () => Supervisor;
  emitEvent(type: string, data: unknown, subject?: string): Promise<void>;
}

const isValue = (v: unknown): v is number | boolean | string => ['number', 'boolean', 'string'].includes(typeof v);

export function cloudCommandTarget(t: Targets): CommandTarget {
  const { role, doorGroups } = t.config.sync.commands;
  return {
    async apply(cmd: CloudCommand): Promise<CommandAck> {
      const a = cmd.args ?? {};
      const actor: Actor = { name: `cloud:${cmd.requestedBy}`, role, doorGroups, via: 'cloud' };
      if (cmd.kind === 'lock') {
        const action = a.action;
        if (typeof a.lock !== 'string' || (action !== 'lock' && action !== 'unlock'))
          return { ok: false, detail: 'lock command needs args.lock and args.action lock|unlock' };
        const seconds = typeof a.seconds === 'number' ? a.seconds : undefined;
        const out = await t.locks.operate(a.lock, action, actor, {
          ...(seconds !== undefined ? { seconds } : {}),
          reason: `cloud command ${cmd.id}`,
        });
        return { ok: out.granted, detail: out.detail };
      }
      if (cmd.kind === 'write') {
        if (role === 'viewer') return { ok: false, detail: 'role viewer may not write points' };
        if (typeof a.device !== 'string' || typeof a.point !== 'string' || !isValue(a.value))
          return { ok: false, detail: 'write command needs args.device, args.point and a scalar args.value' };
        const command: WriteCommand = {
          id: cmd.id,
          device: a.device,
          action: 'write',
          point: a.point,
          value: a.value,
          requestedBy: actor.name,
        };
        const r = await t.supervisor().write(command);
        await t.emitEvent(r.ok ? 'command.sent' : 'command.failed', { ...commandAudit(command), via: 'cloud', detail: r.detail }, a.device);
        return { ok: r.ok, ...(r.detail ? { detail: r.detail } : {}) };
      }
      return { ok: false, detail: `unknown command kind "${String(cmd.kind)}"` };
    },

    async stageConfig(desired: DesiredConfig): Promise<CommandAck> {
      const file = join(t.dataDir, STAGED_CONFIG_FILE);
      try {
        parseConfig(desired.yaml, `cloud config v${desired.version}`);
      } catch (err) {
        return { ok: false, detail: (err as Error).message.slice(0, 2000) };
      }
      writeFileSync(file, `# desired config version ${desired.version} from the cloud\n${desired.yaml}`, { mode: 0o600 });
      return { ok: true, detail: `staged as ${file}; takes effect when the gateway is restarted with it` };
    },
  };
}
