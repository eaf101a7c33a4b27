// Store-and-forward uploader. One loop, one batch in flight: it takes the first stream
// (priority, events, telemetry) that has unsent rows, uploads the next batch, and on the
// cloud's acknowledgement (sent only after the cloud committed) raises that stream's mark
// in `meta`. Before every batch it looks at the priority stream again, so a new alert
// waits for at most the one batch already on the wire. Failures back off (sync/backoff.ts)
// and never skip data: the same rows are offered again until the cloud takes them, and a
// retry of a batch the cloud already committed is answered as a duplicate.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { Agent } from 'undici';
import type { OutpostEvent } from '../gateway/contract/types.js';
import type { Logger } from '../gateway/kernel/log.js';
import type { SyncMetrics } from './metrics.js';
import { VERSION } from '../gateway/kernel/package.js';
import { Backoff, CIRCUIT_GAUGE, Pacer, type CircuitState } from './backoff.js';
import { CloudClient, TransportError, makeAgent, type CloudResponse } from './client.js';
import { readCredentials, type Credentials } from './credentials.js';
import { Downlink, type CommandTarget } from './downlink.js';
import { Outbox, type Batch } from './outbox.js';
import { isPriorityType } from '../gateway/kernel/streams.js';
import {
  H,
  PARQUET_MEDIA_TYPE,
  STREAMS,
  batchKey,
  type GatewayStatusReport,
  type IngestResponse,
  type Stream,
  type StreamStatus,
} from './protocol.js';
import type { SyncConfig } from '../config/sync-schema.js';

export interface SyncHost {
  instance: DuckDBInstance;
  dataDir: string;
  config: SyncConfig;
  metrics: SyncMetrics;
  log: Logger;
  /** Calls back with the events of each commit; returns how to stop listening. */
  onCommittedEvents(fn: (events: readonly OutpostEvent[]) => void): () => void;
  commands: CommandTarget;
}

export interface SyncStatus {
  enabled: boolean;
  enrolled: boolean;
  gatewayId: string | null;
  cloud: string | null;
  circuit: CircuitState;
  consecutiveFailures: number;
  nextAttemptAt: number | null;
  lastSuccessAt: number | null;
  lastError: string | null;
  clockOffsetMs: number;
  streams: Record<Stream, StreamStatus>;
}

/** A failed call: what to say, and the cloud's Retry-After if it sent one. */
class CallFailed extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null = null,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'CallFailed';
  }
}

const MIN_BATCH_ROWS = 100;

export class Uploader {
  private readonly outbox: Outbox;
  private readonly backoff: Backoff;
  private readonly pacer: Pacer;
  private readonly agent: Agent;
  private client: CloudClient | null = null;
  private creds: Credentials | null = null;
  private downlink: Downlink | null = null;
  private acked: Record<Stream, number> | null = null;
  private batchRows: number;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null; // ends the idle sleep early
  private lastSuccessAt: number | null = null;
  private lastError: string | null = null;
  private lastStatusAt = 0;
  private sentSinceReport = true;
  private readonly sleepers = new Set<() => void>();
  private readonly abort = new AbortController(); // cuts an upload in flight short on stop
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly host: SyncHost) {
    const tmp = join(resolve(host.dataDir), 'tmp');
    mkdirSync(tmp, { recursive: true });
    // A batch file is deleted right after its upload; a crash can leave one behind. This
    // process holds the database lock, so no other gateway uses this folder.
    for (const f of readdirSync(tmp)) if (/^batch-.*\.parquet$/.test(f)) rmSync(join(tmp, f), { force: true });
    this.outbox = new Outbox(host.instance, tmp);
    this.backoff = new Backoff(host.config.retry);
    this.pacer = new Pacer(host.config.maxBytesPerSecond);
    this.agent = makeAgent(host.config);
    this.batchRows = host.config.batchRows;
  }

  get credentialsPath(): string {
    return resolve(this.host.dataDir, this.host.config.credentialsFile);
  }

  start(): void {
    // Alerts and access events wake the uploader at once; bulk rows wait for the idle tick.
    this.unsubscribe = this.host.onCommittedEvents((events) => {
      if (events.some((e) => isPriorityType(e.type))) this.wake?.();
    });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const end of this.sleepers) end();
    this.abort.abort();
    await this.loop;
    await this.agent.close().catch(() => undefined);
  }

  /** What `outpost sync status` and GET /api/v1/sync show. */
  async status(): Promise<SyncStatus> {
    const streams = await this.outbox.status();
    this.updateGauges(streams);
    const now = Date.now();
    return {
      enabled: true,
      enrolled: this.creds !== null || readCredentials(this.credentialsPath) !== null,
      gatewayId: this.creds?.gatewayId ?? null,
      cloud: this.baseUrl(),
      circuit: this.backoff.state(now),
      consecutiveFailures: this.backoff.consecutiveFailures,
      nextAttemptAt: this.backoff.nextAttemptAt > now ? this.backoff.nextAttemptAt : null,
      lastSuccessAt: this.lastSuccessAt,
      lastError: this.lastError,
      clockOffsetMs: this.client?.offsetMs ?? 0,
      streams,
    };
  }

  private baseUrl(): string | null {
    const url = this.host.config.url ?? this.creds?.cloud ?? null;
    return url ? url.replace(/\/+$/, '') : null;
  }

  private async run(): Promise<void> {
    const { log, config } = this.host;
    while (!this.stopped) {
      let waitMs = config.idleMs;
      try {
        if (!this.ensureClient()) {
          waitMs = Math.max(config.idleMs, 5000);
        } else {
          const sent = await this.sendNext();
          await this.afterSuccess(sent);
          if (sent) continue;
        }
      } catch (err) {
        const e = err as Error;
        const retryAfter = err instanceof CallFailed ? err.retryAfterMs : null;
        waitMs = this.backoff.failed(retryAfter);
        this.lastError = e.message;
        this.host.metrics.syncConsecutiveFailures.set(this.backoff.consecutiveFailures);
        this.host.metrics.syncCircuit.set(CIRCUIT_GAUGE[this.backoff.state()]);
        const level = this.backoff.consecutiveFailures === 1 || this.backoff.consecutiveFailures % 20 === 0 ? 'warn' : 'debug';
        log[level]({ err: e.message, failures: this.backoff.consecutiveFailures, retryInMs: waitMs }, 'sync: upload failed; will retry');
      }
      await this.sleep(waitMs);
    }
  }

  /** Reads the credentials when they appear (enrollment may happen while the daemon runs). */
  private ensureClient(): boolean {
    if (this.client) return true;
    const creds = readCredentials(this.credentialsPath);
    if (!creds) {
      this.lastError = `not enrolled: run \`outpost enroll --cloud URL --token TOKEN\` (expects ${this.credentialsPath})`;
      return false;
    }
    this.creds = creds;
    this.client = new CloudClient(creds, this.baseUrl()!, this.agent, this.abort.signal);
    this.downlink = new Downlink(this.host.commands, this.host.metrics, this.host.log, this.host.config.commands);
    this.host.log.info({ gateway: creds.gatewayId, cloud: this.baseUrl() }, 'sync: uploading to the cloud');
    return true;
  }

  /** Uploads the next batch of the most important stream with data; false when all are drained. */
  private async sendNext(): Promise<boolean> {
    this.acked ??= (await this.outbox.marks()).acked;
    for (const stream of STREAMS) {
      const batch = await this.outbox.next(stream, this.acked[stream], this.batchRows);
      if (!batch) continue;
      await this.upload(batch);
      return true;
    }
    return false;
  }

  private async upload(b: Batch): Promise<void> {
    const { metrics } = this.host;
    const wait = this.pacer.reserve(b.body.length);
    if (wait > 0) await this.sleep(wait, false);
    if (this.stopped) return;
    const key = batchKey(this.client!.gatewayId, b.stream, b.first, b.last);
    metrics.syncBytes.inc({ stream: b.stream }, b.body.length);
    const res = await this.callCloud('POST', '/api/v1/ingest', {
      body: b.body,
      key,
      headers: {
        'content-type': PARQUET_MEDIA_TYPE,
        [H.stream]: b.stream,
        [H.firstSeq]: String(b.first),
        [H.lastSeq]: String(b.last),
        [H.rows]: String(b.rows),
      },
    });
    if (res.status === 413 && this.batchRows > MIN_BATCH_ROWS) {
      this.batchRows = Math.max(MIN_BATCH_ROWS, Math.floor(this.batchRows / 2));
      metrics.syncBatches.inc({ stream: b.stream, result: 'too_large' });
      throw new CallFailed(`batch of ${b.rows} rows (${b.body.length} bytes) too large for the cloud; now ${this.batchRows} rows`, 0, 413);
    }
    if (res.status !== 200) {
      metrics.syncBatches.inc({ stream: b.stream, result: 'error' });
      throw new CallFailed(`upload of ${key}: HTTP ${res.status}: ${errorText(res)}`, res.retryAfterMs, res.status);
    }
    const ack = JSON.parse(res.body.toString('utf8')) as IngestResponse;
    if (!(ack.ackedSeq >= b.last)) {
      metrics.syncBatches.inc({ stream: b.stream, result: 'error' });
      throw new CallFailed(`upload of ${key}: the cloud acknowledged only up to seq ${ack.ackedSeq}`);
    }
    // Only what this batch carried is known to be committed; a larger cloud mark is not ours to trust.
    await this.outbox.ack(b.stream, b.last);
    this.acked![b.stream] = b.last;
    metrics.syncBatches.inc({ stream: b.stream, result: ack.duplicate ? 'duplicate' : 'ok' });
    metrics.syncRows.inc({ stream: b.stream }, b.rows);
    this.sentSinceReport = true;
  }

  /** A signed call whose non-answers (transport errors) become retryable failures. */
  private async callCloud(method: 'GET' | 'POST', path: string, opts: Parameters<CloudClient['call']>[2]): Promise<CloudResponse> {
    try {
      return await this.client!.call(method, path, opts);
    } catch (err) {
      if (err instanceof TransportError) throw new CallFailed(err.message);
      throw err;
    }
  }

  private async afterSuccess(sentBatch: boolean): Promise<void> {
    const now = Date.now();
    this.backoff.succeeded();
    this.lastSuccessAt = now;
    this.lastError = null;
    const { metrics, config } = this.host;
    metrics.syncLastSuccess.set(now / 1000);
    metrics.syncConsecutiveFailures.set(0);
    metrics.syncCircuit.set(CIRCUIT_GAUGE.closed);
    // Report the backlog once drained (so the cloud's numbers match ours) and periodically.
    if ((!sentBatch && this.sentSinceReport) || now - this.lastStatusAt >= config.statusEveryMs) await this.reportStatus();
    if (!sentBatch) await this.downlink?.poll((m, p, o) => this.callCloud(m, p, o));
  }

  private async reportStatus(): Promise<void> {
    const streams = await this.outbox.status();
    this.updateGauges(streams);
    const report: GatewayStatusReport = {
      version: VERSION,
      at: Date.now(),
      streams,
      lastSuccessAt: this.lastSuccessAt,
      lastError: this.lastError,
    };
    const res = await this.callCloud('POST', '/api/v1/gateways/me/status', {
      body: JSON.stringify(report),
      headers: { 'content-type': 'application/json' },
    });
    if (res.status >= 300) throw new CallFailed(`status report: HTTP ${res.status}: ${errorText(res)}`, res.retryAfterMs, res.status);
    this.lastStatusAt = Date.now();
    this.sentSinceReport = false;
  }

  private updateGauges(streams: Record<Stream, StreamStatus>): void {
    const { metrics } = this.host;
    const now = Date.now();
    for (const s of STREAMS) {
      const st = streams[s];
      metrics.syncBacklogRows.set({ stream: s }, st.backlogRows);
      metrics.syncBacklogBytes.set({ stream: s }, st.backlogBytes);
      metrics.syncOldestUnsent.set({ stream: s }, st.oldestUnsentTs === null ? 0 : Math.max(0, (now - st.oldestUnsentTs) / 1000));
      metrics.syncDropped.set({ stream: s }, st.dropped);
    }
  }

  private sleep(ms: number, wakeable = true): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise<void>((done) => {
      const finish = () => {
        clearTimeout(t);
        this.sleepers.delete(finish);
        if (this.wake === finish) this.wake = null;
        done();
      };
      const t = setTimeout(finish, ms);
      this.sleepers.add(finish);
      if (wakeable) this.wake = finish;
    });
  }
}

function errorText(res: CloudResponse): string {
  const text = res.body.toString('utf8').slice(0, 500);
  try {
    return (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    return text;
  }
}
