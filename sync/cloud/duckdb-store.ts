// CloudStore on one DuckDB file (a single cloud process; see README for PostgreSQL).
// DuckDB is MVCC with first-writer-wins on rows, so every write to a shared row runs under
// an in-process lock: per gateway (gateways/commands/config rows), per (gateway, stream)
// (the high-water mark) and one for enrollment (token rows).
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import {
  STREAMS,
  type CloudCommand,
  type CommandAck,
  type DesiredConfig,
  type GatewayStatusReport,
  type IngestResponse,
  type Stream,
} from '../protocol.js';
import { DuckDbCommands, gatewayLockKey } from './duckdb-commands.js';
import { ingestBatch } from './duckdb-ingest.js';
import { exportParquet, queryBuckets, queryEvents, queryReadings } from './duckdb-queries.js';
import { inTransaction, iso, openCloudDb, rows, tsParam, withConnection } from './duckdb-schema.js';
import { KeyedQueue } from './keyed-queue.js';
import {
  CloudRequestError,
  type CloudEvent,
  type CloudReading,
  type CloudStore,
  type CommandRecord,
  type ConfigAck,
  type EnrollInput,
  type EnrollmentTokenInput,
  type EventQuery,
  type ExportQuery,
  type ExportResult,
  type GatewayCredentials,
  type GatewayInfo,
  type IngestBatch,
  type NewCommand,
  type ReadingBucket,
  type ReadingQuery,
  type StreamInfo,
} from './store.js';

export interface DuckDbStoreOptions {
  /** The DuckDB file. */
  path: string;
  /** Ingest and export temp files; emptied at open (leftovers of a crash). */
  tmpDir: string;
  memoryLimitMB: number;
  threads?: number;
}

export class DuckDbCloudStore implements CloudStore {
  private readonly locks = new KeyedQueue();
  private readonly commands: DuckDbCommands;
  private closed = false;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly tmpDir: string,
  ) {
    this.commands = new DuckDbCommands(instance, this.locks);
  }

  static async open(opts: DuckDbStoreOptions): Promise<DuckDbCloudStore> {
    mkdirSync(opts.tmpDir, { recursive: true, mode: 0o700 });
    for (const f of readdirSync(opts.tmpDir)) rmSync(join(opts.tmpDir, f), { force: true, recursive: true });
    const instance = await openCloudDb(opts.path, {
      memoryLimitMB: opts.memoryLimitMB,
      ...(opts.threads ? { threads: opts.threads } : {}),
    });
    return new DuckDbCloudStore(instance, opts.tmpDir);
  }

  async seedEnrollmentTokens(tokens: readonly EnrollmentTokenInput[]): Promise<void> {
    for (const t of tokens) await this.insertToken(t, true);
  }

  async addEnrollmentToken(t: EnrollmentTokenInput): Promise<void> {
    await this.insertToken(t, false);
  }

  private async insertToken(t: EnrollmentTokenInput, ignoreKnown: boolean): Promise<void> {
    await withConnection(this.instance, (c) =>
      c.run(
        `INSERT INTO enrollment_tokens (sha256, site, gateway_id, expires_at, created_at, created_by) VALUES ($1, $2, $3, $4, now(), $5)
         ${ignoreKnown ? 'ON CONFLICT DO NOTHING' : ''}`,
        [t.sha256, t.site, t.gatewayId ?? null, t.expiresAt === null ? null : tsParam(t.expiresAt), t.createdBy],
      ),
    );
  }

  // One lock for all enrollments (rare), then the gateway's: same order everywhere, no deadlock.
  async enroll(e: EnrollInput): Promise<void> {
    await this.locks.run('enroll', () =>
      this.locks.run(gatewayLockKey(e.gatewayId), () =>
        withConnection(this.instance, (c) =>
          inTransaction(c, async () => {
            const tok = await rows(
              c,
              'SELECT site, gateway_id, epoch_ms(expires_at)::DOUBLE, used_at IS NOT NULL FROM enrollment_tokens WHERE sha256 = $1',
              [e.tokenSha256],
            );
            const [site, boundId, expiresAt, used] = (tok[0] ?? []) as [string?, (string | null)?, (number | null)?, boolean?];
            if (site === undefined) throw new CloudRequestError(401, 'token: unknown enrollment token');
            if (used) throw new CloudRequestError(401, 'token: enrollment token was already used');
            if (expiresAt != null && expiresAt <= Date.now())
              throw new CloudRequestError(401, `token: enrollment token expired at ${iso(expiresAt)}`);
            if (site !== e.site) throw new CloudRequestError(401, `site: enrollment token is not valid for site "${e.site}"`);
            if (boundId != null && boundId !== e.gatewayId)
              throw new CloudRequestError(401, `gatewayId: enrollment token is not valid for gateway "${e.gatewayId}"`);
            await c.run('UPDATE enrollment_tokens SET used_at = now(), used_by = $1 WHERE sha256 = $2', [e.gatewayId, e.tokenSha256]);
            await c.run(
              `INSERT INTO gateways (id, site, name, secret, enrolled_at) VALUES ($1, $2, $3, $4, now())
               ON CONFLICT (id) DO UPDATE SET site = $2, name = coalesce($3, gateways.name), secret = $4, enrolled_at = now()`,
              [e.gatewayId, e.site, e.name ?? null, e.secret],
            );
            for (const s of STREAMS) {
              await c.run('INSERT INTO streams (gateway_id, stream) VALUES ($1, $2) ON CONFLICT DO NOTHING', [e.gatewayId, s]);
            }
          }),
        ),
      ),
    );
  }

  async gatewayCredentials(gatewayId: string): Promise<GatewayCredentials | undefined> {
    const r = await withConnection(this.instance, (c) => rows(c, 'SELECT id, site, secret FROM gateways WHERE id = $1', [gatewayId]));
    return r[0] ? { id: r[0][0] as string, site: r[0][1] as string, secret: r[0][2] as string } : undefined;
  }

  async gatewayExists(gatewayId: string): Promise<boolean> {
    return (await this.gatewayCredentials(gatewayId)) !== undefined;
  }

  async touchGateway(gatewayId: string): Promise<void> {
    await this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, (c) => c.run('UPDATE gateways SET last_seen = now() WHERE id = $1', [gatewayId])),
    );
  }

  ingest(batch: IngestBatch): Promise<IngestResponse> {
    return ingestBatch(this.instance, this.locks, this.tmpDir, batch);
  }

  async setStatus(gatewayId: string, report: GatewayStatusReport): Promise<void> {
    await this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, (c) =>
        c.run('UPDATE gateways SET status = $1::JSON, status_at = now(), last_seen = now() WHERE id = $2', [
          JSON.stringify(report),
          gatewayId,
        ]),
      ),
    );
  }

  // last_seen is the later of the gateway row's (status, polls) and its streams' (ingest),
  // so an ingest commit never has to update the gateway row.
  async listGateways(): Promise<GatewayInfo[]> {
    return withConnection(this.instance, async (c) => {
      const gws = await rows(
        c,
        `SELECT id, site, name, epoch_ms(enrolled_at)::DOUBLE, epoch_ms(last_seen)::DOUBLE, status::VARCHAR FROM gateways ORDER BY site, id`,
      );
      const streams = await rows(
        c,
        `SELECT gateway_id, stream, acked_seq::DOUBLE, epoch_ms(updated_at)::DOUBLE, batches::DOUBLE, inserted_rows::DOUBLE,
                duplicate_batches::DOUBLE, bytes::DOUBLE FROM streams`,
      );
      const byGateway = new Map<string, { streams: Partial<Record<Stream, StreamInfo>>; updated: number | null }>();
      for (const s of streams) {
        const entry = byGateway.get(s[0] as string) ?? { streams: {}, updated: null };
        const updated = s[3] as number | null;
        entry.streams[s[1] as Stream] = {
          ackedSeq: s[2] as number,
          updatedAt: iso(updated),
          batches: s[4] as number,
          insertedRows: s[5] as number,
          duplicateBatches: s[6] as number,
          bytes: s[7] as number,
        };
        if (updated !== null && (entry.updated === null || updated > entry.updated)) entry.updated = updated;
        byGateway.set(s[0] as string, entry);
      }
      return gws.map((g) => {
        const extra = byGateway.get(g[0] as string);
        const seen = [g[4] as number | null, extra?.updated ?? null].filter((x): x is number => x !== null);
        const status = g[5] === null ? null : (JSON.parse(g[5] as string) as GatewayStatusReport);
        const dropped = status ? Object.values(status.streams ?? {}).reduce((n, s) => n + (Number(s?.dropped) || 0), 0) : 0;
        return {
          id: g[0] as string,
          site: g[1] as string,
          name: g[2] as string | null,
          enrolledAt: iso(g[3] as number)!,
          lastSeen: seen.length > 0 ? iso(Math.max(...seen)) : null,
          streams: extra?.streams ?? {},
          status,
          dropped,
        };
      });
    });
  }

  readings(q: ReadingQuery): Promise<CloudReading[]> {
    return queryReadings(this.instance, q);
  }

  readingBuckets(q: ReadingQuery, bucket: string): Promise<ReadingBucket[]> {
    return queryBuckets(this.instance, q, bucket);
  }

  events(q: EventQuery): Promise<CloudEvent[]> {
    return queryEvents(this.instance, q);
  }

  exportParquet(q: ExportQuery): Promise<ExportResult> {
    return exportParquet(this.instance, this.tmpDir, q);
  }

  addCommand(cmd: NewCommand): Promise<CloudCommand> {
    return this.commands.add(cmd);
  }

  pendingCommands(gatewayId: string, limit: number): Promise<CloudCommand[]> {
    return this.commands.pending(gatewayId, limit);
  }

  ackCommand(gatewayId: string, commandId: string, ack: CommandAck): Promise<boolean> {
    return this.commands.ack(gatewayId, commandId, ack);
  }

  listCommands(gatewayId: string, limit: number): Promise<CommandRecord[]> {
    return this.commands.list(gatewayId, limit);
  }

  putDesiredConfig(gatewayId: string, yaml: string, by: string): Promise<number> {
    return this.commands.putConfig(gatewayId, yaml, by);
  }

  desiredConfig(gatewayId: string): Promise<DesiredConfig | undefined> {
    return this.commands.config(gatewayId);
  }

  ackDesiredConfig(gatewayId: string, ack: ConfigAck): Promise<boolean> {
    return this.commands.ackConfig(gatewayId, ack);
  }

  // The HTTP server is closed first, so no request is still using a connection here.
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const c = await this.instance.connect();
    try {
      // Folds the WAL into the file so the next open is quick. A handler that outlived the
      // HTTP server's close may still hold a write transaction: then skip it (the WAL is
      // replayed at the next open, nothing is lost) rather than fail the shutdown.
      await c.run('CHECKPOINT').catch(() => undefined);
    } finally {
      c.closeSync();
      this.instance.closeSync();
    }
  }
}
