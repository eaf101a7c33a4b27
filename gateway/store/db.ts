// Opens the DuckDB file and creates the tables. One instance per gateway: a writer
// connection (group commit) and a reader connection (API, CLI, retention) share it,
// so readers see committed data without blocking the writer (MVCC).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

// Rows carry a per-table `seq`: gap-free and increasing, assigned by the single writer
// at commit time, so the sync uploader can resume from "last seq acknowledged".
// Booleans are stored as value 1/0 with text 'true'/'false' so they round-trip.
const DDL = [
  `CREATE TABLE IF NOT EXISTS readings (
     seq BIGINT NOT NULL,
     ts TIMESTAMPTZ NOT NULL,
     device VARCHAR NOT NULL,
     point VARCHAR NOT NULL,
     value DOUBLE,
     text VARCHAR,
     unit VARCHAR,
     quality VARCHAR
   )`,
  `CREATE TABLE IF NOT EXISTS events (
     seq BIGINT NOT NULL,
     id VARCHAR NOT NULL,
     time TIMESTAMPTZ NOT NULL,
     type VARCHAR NOT NULL,
     source VARCHAR NOT NULL,
     subject VARCHAR,
     data JSON
   )`,
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

export async function openDatabase(path: string, opts: { readOnly?: boolean; memoryLimitMB?: number } = {}): Promise<Database> {
  if (!opts.readOnly) mkdirSync(dirname(path), { recursive: true });
  const settings: Record<string, string> = { memory_limit: `${opts.memoryLimitMB ?? 256}MB` };
  if (opts.readOnly) settings.access_mode = 'READ_ONLY';
  const instance = await DuckDBInstance.create(path, settings);
  const writer = await instance.connect();
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
