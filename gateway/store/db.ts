// Opens the DuckDB file and creates the tables. One instance per gateway: a writer
// connection (group commit) and a reader connection (API, CLI, retention) share it,
// so readers see committed data without blocking the writer (MVCC).
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { EVENT_COLUMNS, READING_COLUMNS, tableDdl } from '../kernel/columns.js';
import { lockDown } from '../kernel/duckdb.js';

// Rows carry a per-table `seq`: gap-free and increasing, assigned by the single writer
// at commit time, so the sync uploader can resume from "last seq acknowledged".
const DDL = [
  tableDdl('readings', READING_COLUMNS),
  tableDdl('events', EVENT_COLUMNS),
  // Alert state (gateway/alerts.ts): small, one row per alert; the events table holds its history.
  `CREATE TABLE IF NOT EXISTS alerts (
     id VARCHAR PRIMARY KEY,
     key VARCHAR NOT NULL,
     rule VARCHAR,
     severity VARCHAR NOT NULL,
     status VARCHAR NOT NULL,
     message VARCHAR NOT NULL,
     data JSON,
     opened_at TIMESTAMPTZ NOT NULL,
     last_at TIMESTAMPTZ NOT NULL,
     count INTEGER NOT NULL,
     acknowledged_at TIMESTAMPTZ,
     acknowledged_by VARCHAR,
     resolved_at TIMESTAMPTZ,
     resolved_by VARCHAR,
     note VARCHAR
   )`,
  // Answers to API requests that carried an Idempotency-Key (gateway/api/idempotency.ts), kept 24 h.
  `CREATE TABLE IF NOT EXISTS idempotency_keys (
     identity VARCHAR NOT NULL,
     key VARCHAR NOT NULL,
     fingerprint VARCHAR NOT NULL,
     status INTEGER NOT NULL,
     body VARCHAR NOT NULL,
     created_at TIMESTAMPTZ NOT NULL,
     PRIMARY KEY (identity, key)
   )`,
  // Outbound webhook deliveries (gateway/webhooks/): written before the first attempt, so a
  // pending one survives restarts; `seq` orders deliveries of one endpoint and subject.
  `CREATE TABLE IF NOT EXISTS webhook_deliveries (
     id VARCHAR PRIMARY KEY,
     seq BIGINT NOT NULL,
     endpoint VARCHAR NOT NULL,
     event_id VARCHAR NOT NULL,
     subject VARCHAR NOT NULL,
     payload JSON NOT NULL,
     attempts INTEGER NOT NULL,
     next_at TIMESTAMPTZ NOT NULL,
     state VARCHAR NOT NULL,
     last_error VARCHAR,
     created_at TIMESTAMPTZ NOT NULL,
     updated_at TIMESTAMPTZ NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)`,
  `INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING`,
];

export interface Database {
  instance: DuckDBInstance;
  writer: DuckDBConnection;
  reader: DuckDBConnection;
  path: string;
  close(): void;
}

export interface OpenOptions {
  readOnly?: boolean;
  memoryLimitMB?: number;
  /** Directories DuckDB may still read and write (sync batches); default `<dir of file>/tmp`. */
  allowedDirs?: readonly string[];
  /** Extra settings applied before the configuration is locked (e.g. TimeZone). */
  settings?: Readonly<Record<string, string>>;
}

export async function openDatabase(path: string, opts: OpenOptions = {}): Promise<Database> {
  if (!opts.readOnly) mkdirSync(dirname(path), { recursive: true });
  const settings: Record<string, string> = { memory_limit: `${opts.memoryLimitMB ?? 256}MB` };
  if (opts.readOnly) settings.access_mode = 'READ_ONLY';
  const instance = await DuckDBInstance.create(path, settings);
  const writer = await instance.connect();
  await lockDown(writer, opts.allowedDirs ?? [join(dirname(resolve(path)), 'tmp')], opts.settings ?? {});
  if (!opts.readOnly) for (const sql of DDL) await writer.run(sql);
  const reader = await instance.connect();
  let closed = false;
  return {
    instance,
    writer,
    reader,
    path,
    close() {
      if (closed) return;
      closed = true;
      reader.closeSync();
      writer.closeSync();
      instance.closeSync();
    },
  };
}
