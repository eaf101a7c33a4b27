// The cloud's DuckDB file: tables, opening, and the small helpers every DuckDB query
// module shares. The file holds gateway secrets in clear (HMAC needs them): protect it
// like a key store (0600 dataDir, encrypted backups).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, DuckDBTimestampTZValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { EVENT_COLUMNS, READING_COLUMNS, tableDdl, type Column } from '../../gateway/kernel/columns.js';
export { withConnection } from '../../gateway/kernel/duckdb.js';

// No unique index on readings/events: an ART index would slow bulk inserts badly, and
// (gateway, stream, seq) uniqueness is guaranteed by inserting only seq > acked_seq under
// the stream's lock. Stream counters live on the streams row, updated in the same commit.
const GATEWAY_ID: Column = { name: 'gateway_id', type: 'VARCHAR', nullable: false };
const SITE: Column = { name: 'site', type: 'VARCHAR', nullable: false };
const STREAM: Column = { name: 'stream', type: 'VARCHAR', nullable: false };

const DDL = [
  `CREATE TABLE IF NOT EXISTS gateways (
     id VARCHAR PRIMARY KEY,
     site VARCHAR NOT NULL,
     name VARCHAR,
     secret VARCHAR NOT NULL,
     enrolled_at TIMESTAMPTZ NOT NULL,
     last_seen TIMESTAMPTZ,
     status JSON,
     status_at TIMESTAMPTZ
   )`,
  `CREATE TABLE IF NOT EXISTS streams (
     gateway_id VARCHAR NOT NULL,
     stream VARCHAR NOT NULL,
     acked_seq BIGINT NOT NULL DEFAULT 0,
     updated_at TIMESTAMPTZ,
     batches BIGINT NOT NULL DEFAULT 0,
     inserted_rows BIGINT NOT NULL DEFAULT 0,
     duplicate_batches BIGINT NOT NULL DEFAULT 0,
     bytes BIGINT NOT NULL DEFAULT 0,
     PRIMARY KEY (gateway_id, stream)
   )`,
  tableDdl('readings', READING_COLUMNS, [GATEWAY_ID, SITE]),
  tableDdl('events', EVENT_COLUMNS, [GATEWAY_ID, SITE, STREAM]),
  `CREATE TABLE IF NOT EXISTS enrollment_tokens (
     sha256 VARCHAR PRIMARY KEY,
     site VARCHAR NOT NULL,
     gateway_id VARCHAR,
     expires_at TIMESTAMPTZ,
     created_at TIMESTAMPTZ NOT NULL,
     created_by VARCHAR NOT NULL,
     used_at TIMESTAMPTZ,
     used_by VARCHAR
   )`,
  `CREATE TABLE IF NOT EXISTS commands (
     id VARCHAR PRIMARY KEY,
     gateway_id VARCHAR NOT NULL,
     kind VARCHAR NOT NULL,
     args JSON NOT NULL,
     requested_by VARCHAR NOT NULL,
     created_at TIMESTAMPTZ NOT NULL,
     expires_at TIMESTAMPTZ NOT NULL,
     delivered_at TIMESTAMPTZ,
     acked_at TIMESTAMPTZ,
     ok BOOLEAN,
     detail VARCHAR
   )`,
  `CREATE TABLE IF NOT EXISTS desired_config (
     gateway_id VARCHAR NOT NULL,
     version INTEGER NOT NULL,
     yaml VARCHAR NOT NULL,
     created_at TIMESTAMPTZ NOT NULL,
     created_by VARCHAR NOT NULL,
     acked_at TIMESTAMPTZ,
     ack_ok BOOLEAN,
     ack_detail VARCHAR,
     PRIMARY KEY (gateway_id, version)
   )`,
  `CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)`,
  `INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING`,
];

export async function openCloudDb(path: string, opts: { memoryLimitMB: number; threads?: number }): Promise<DuckDBInstance> {
  mkdirSync(dirname(path), { recursive: true });
  // Each 50k-row batch adds ~3 MB of WAL; at DuckDB's default 16 MB threshold every fifth
  // ingest paid a 300-500 ms checkpoint inside its request. 256 MB bounds crash replay
  // while checkpointing ~16x less often (bench: +32% drain rate).
  const settings: Record<string, string> = { memory_limit: `${opts.memoryLimitMB}MB`, checkpoint_threshold: '256MB' };
  if (opts.threads) settings.threads = String(opts.threads);
  const instance = await DuckDBInstance.create(path, settings);
  const c = await instance.connect();
  try {
    for (const sql of DDL) await c.run(sql);
  } finally {
    c.closeSync();
  }
  return instance;
}

/** A short-lived connection per operation: DuckDB connections are cheap, and one is never shared. */

export async function inTransaction<T>(c: DuckDBConnection, fn: () => Promise<T>): Promise<T> {
  await c.run('BEGIN TRANSACTION');
  try {
    const out = await fn();
    await c.run('COMMIT');
    return out;
  } catch (err) {
    await c.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export async function rows(c: DuckDBConnection, sql: string, params: DuckDBValue[] = []): Promise<DuckDBValue[][]> {
  return (await c.runAndReadAll(sql, params)).getRows();
}

/** Exact ms → TIMESTAMPTZ parameter (to_timestamp(double) can be off by a microsecond). */
export const tsParam = (ms: number) => new DuckDBTimestampTZValue(BigInt(Math.trunc(ms)) * 1000n);

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Collects `column op $n` clauses with their parameters; user input only ever travels as a parameter. */
export class Where {
  readonly clauses: string[] = [];
  readonly params: DuckDBValue[] = [];

  constructor(private readonly offset = 0) {}

  add(sqlWithPlaceholder: string, value: DuckDBValue): this {
    this.params.push(value);
    this.clauses.push(sqlWithPlaceholder.replace('?', `$${this.offset + this.params.length}`));
    return this;
  }

  raw(sql: string): this {
    this.clauses.push(sql);
    return this;
  }

  get sql(): string {
    return this.clauses.length > 0 ? 'WHERE ' + this.clauses.join(' AND ') : '';
  }
}
