// Ingest of one Parquet batch into DuckDB. The body goes to a temp file that DuckDB reads
// directly (INSERT … SELECT FROM read_parquet: no JS row loop), is checked against the
// request headers, and rows above the stream's high-water mark are inserted in the same
// transaction that advances that mark — so an acknowledged seq is always a committed one.
import { randomUUID } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { columnsOf, type IngestResponse, type Stream } from '../protocol.js';
import { inTransaction, rows, withConnection } from './duckdb-schema.js';
import type { KeyedQueue } from './keyed-queue.js';
import { CloudRequestError, type IngestBatch } from './store.js';

const streamLockKey = (gatewayId: string, stream: Stream) => `stream:${gatewayId}:${stream}`;

// Column lists come from the protocol constants, never from the request.
function insertSql(stream: Stream): string {
  const cols = columnsOf(stream)
    .map(([name, type]) => (name === 'data' ? `CAST(data AS JSON)` : `CAST("${name}" AS ${type})`))
    .join(', ');
  return stream === 'telemetry'
    ? `INSERT INTO readings SELECT $1, $2, ${cols} FROM read_parquet($3) WHERE seq > $4`
    : `INSERT INTO events SELECT $1, $2, '${stream}', ${cols} FROM read_parquet($3) WHERE seq > $4`;
}

async function ackedSeq(c: DuckDBConnection, gatewayId: string, stream: Stream): Promise<number> {
  const r = await rows(c, 'SELECT acked_seq::DOUBLE FROM streams WHERE gateway_id = $1 AND stream = $2', [gatewayId, stream]);
  return (r[0]?.[0] as number | undefined) ?? 0;
}

/** Parse/cast failures inside DuckDB are the sender's fault (a broken or mistyped file). */
function asBadBody(err: unknown): never {
  const msg = (err as Error).message ?? String(err);
  if (/Conversion Error|Invalid Input Error|Constraint Error|Binder Error|No magic bytes|not a parquet file/i.test(msg)) {
    throw new CloudRequestError(400, `body: ${msg.split('\n')[0]}`);
  }
  throw err;
}

async function checkFile(c: DuckDBConnection, file: string, b: IngestBatch): Promise<void> {
  let names: string[];
  try {
    names = (await c.runAndReadAll('SELECT * FROM read_parquet($1) LIMIT 0', [file])).columnNames();
  } catch (err) {
    asBadBody(err);
  }
  const want = columnsOf(b.stream).map(([n]) => n);
  const missing = want.filter((n) => !names.includes(n));
  const extra = names.filter((n) => !want.includes(n));
  if (missing.length > 0 || extra.length > 0) {
    const detail = [missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `unexpected ${extra.join(', ')}` : '']
      .filter(Boolean)
      .join('; ');
    throw new CloudRequestError(400, `body: Parquet columns for stream "${b.stream}" must be ${want.join(', ')} (${detail})`);
  }
  const [count, min, max, distinct] = (
    await rows(c, 'SELECT count(*)::DOUBLE, min(seq)::DOUBLE, max(seq)::DOUBLE, count(DISTINCT seq)::DOUBLE FROM read_parquet($1)', [file])
  )[0] as (number | null)[];
  if (count !== b.rows) throw new CloudRequestError(400, `body: has ${count} rows but x-outpost-rows says ${b.rows}`);
  if (min !== b.firstSeq) throw new CloudRequestError(400, `body: smallest seq is ${min} but x-outpost-first-seq says ${b.firstSeq}`);
  if (max !== b.lastSeq) throw new CloudRequestError(400, `body: largest seq is ${max} but x-outpost-last-seq says ${b.lastSeq}`);
  if (distinct !== count) throw new CloudRequestError(400, `body: seq values are not unique (${distinct} distinct in ${count} rows)`);
}

export async function ingestBatch(instance: DuckDBInstance, locks: KeyedQueue, tmpDir: string, b: IngestBatch): Promise<IngestResponse> {
  const key = streamLockKey(b.gatewayId, b.stream);
  return withConnection(instance, async (c) => {
    // A retry of a committed batch is answered without reading its body.
    const duplicate = () =>
      locks.run(key, () =>
        inTransaction(c, async () => {
          await c.run(
            `UPDATE streams SET duplicate_batches = duplicate_batches + 1, updated_at = now() WHERE gateway_id = $1 AND stream = $2`,
            [b.gatewayId, b.stream],
          );
          return { stream: b.stream, ackedSeq: await ackedSeq(c, b.gatewayId, b.stream), inserted: 0, duplicate: true };
        }),
      );
    if (b.lastSeq <= (await ackedSeq(c, b.gatewayId, b.stream))) return duplicate();

    const file = join(tmpDir, `ingest-${randomUUID()}.parquet`);
    try {
      await writeFile(file, b.body, { mode: 0o600 });
      await checkFile(c, file, b); // outside the lock: batches of other streams verify in parallel
      return await locks.run(key, () =>
        inTransaction(c, async () => {
          const before = await ackedSeq(c, b.gatewayId, b.stream);
          let inserted = 0;
          if (b.lastSeq > before) {
            try {
              const r = await rows(c, insertSql(b.stream), [b.gatewayId, b.site, file, BigInt(before)]);
              inserted = Number(r[0]?.[0] ?? 0);
            } catch (err) {
              asBadBody(err);
            }
          }
          const after = Math.max(before, b.lastSeq);
          await c.run(
            `INSERT INTO streams (gateway_id, stream, acked_seq, updated_at, batches, inserted_rows, duplicate_batches, bytes)
             VALUES ($1, $2, $3, now(), 1, $4, $5, $6)
             ON CONFLICT (gateway_id, stream) DO UPDATE SET acked_seq = $3, updated_at = now(),
               batches = streams.batches + 1, inserted_rows = streams.inserted_rows + $4,
               duplicate_batches = streams.duplicate_batches + $5, bytes = streams.bytes + $6`,
            [b.gatewayId, b.stream, BigInt(after), BigInt(inserted), BigInt(inserted === 0 ? 1 : 0), BigInt(b.body.length)],
          );
          return { stream: b.stream, ackedSeq: after, inserted, duplicate: inserted === 0 && b.lastSeq <= before };
        }),
      );
    } finally {
      await unlink(file).catch(() => undefined);
    }
  });
}
