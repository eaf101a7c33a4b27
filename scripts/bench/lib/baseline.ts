// The ceiling the gateway is measured against: a bare DuckDB appender loop in this
// process, writing reading rows shaped like the gateway's (same DDL via the gateway's own
// openDatabase, same seq/ts/device/point/value columns and per-row append calls as
// gateway/store/writer.ts) with BEGIN / append / flushSync / COMMIT per batch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBTimestampTZValue, type DuckDBAppender } from '@duckdb/node-api';
import { SiteConfigSchema } from '../../../config/schema.js';
import { openDatabase } from '../../../gateway/store/db.js';

export interface BaselineResult {
  rows: number;
  batches: number;
  batchRows: number;
  seconds: number;
  rowsPerSec: number;
}

/** Hard cap on batches, in case a machine is far faster than expected. */
const MAX_BATCHES = 1_000_000;

/** The gateway's default `store.flushRows` (the most rows one group commit takes). */
export function defaultFlushRows(): number {
  return Number(SiteConfigSchema.properties.store.properties.flushRows.default);
}

export async function runBaseline(opts: { seconds: number; batchRows: number; devices: number }): Promise<BaselineResult> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-baseline-'));
  const db = await openDatabase(join(dir, 'baseline.duckdb'));
  let app: DuckDBAppender | null = null;
  try {
    const conn = db.writer;
    app = await conn.createAppender('readings');
    const devices = Array.from({ length: opts.devices }, (_, i) => `bench-p${i}`);
    const t0 = performance.now();
    const deadline = t0 + opts.seconds * 1000;
    let seq = 1;
    let batches = 0;
    while (performance.now() < deadline && batches < MAX_BATCHES) {
      await conn.run('BEGIN TRANSACTION');
      appendBatch(app, seq, opts.batchRows, devices);
      app.flushSync();
      await conn.run('COMMIT');
      seq += opts.batchRows;
      batches++;
    }
    const seconds = (performance.now() - t0) / 1000;
    const rows = seq - 1;
    return { rows, batches, batchRows: opts.batchRows, seconds, rowsPerSec: rows / seconds };
  } finally {
    app?.closeSync();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Mirrors appendReadings() in gateway/store/writer.ts for a numeric reading with no
// unit or quality: value set, text/unit/quality NULL.
function appendBatch(app: DuckDBAppender, firstSeq: number, n: number, devices: readonly string[]): void {
  const nowMs = Date.now();
  for (let i = 0; i < n; i++) {
    const seq = firstSeq + i;
    app.appendBigInt(BigInt(seq));
    app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(Math.round((nowMs + i) * 1000))));
    app.appendVarchar(devices[seq % devices.length]!);
    app.appendVarchar('temp');
    app.appendDouble(20 + (seq % 100) / 10);
    app.appendNull();
    app.appendNull();
    app.appendNull();
    app.endRow();
  }
}
