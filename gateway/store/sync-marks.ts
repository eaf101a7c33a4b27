// What the store knows of sync, kept in `meta` and so committed with the data: per stream
// the highest seq the cloud has acknowledged, and how many unsent rows retention had to
// drop. The uploader raises the marks; retention reads them to delete acknowledged rows
// first, and counts what it deletes unsent.
import type { DuckDBConnection } from '@duckdb/node-api';
import { STREAMS, type Stream } from '../kernel/streams.js';

const ackKey = (s: Stream) => `sync_acked_${s}`;
const dropKey = (s: Stream) => `sync_dropped_${s}`;

/** Sync bookkeeping in `meta` (read by retention too, to know what is safe to delete). */
export async function readMarks(c: DuckDBConnection): Promise<{ acked: Record<Stream, number>; dropped: Record<Stream, number> }> {
  const rows = (await c.runAndReadAll(`SELECT key, value FROM meta WHERE key LIKE 'sync_%'`)).getRows();
  const m = new Map(rows.map((r) => [r[0] as string, Number(r[1])]));
  const acked = {} as Record<Stream, number>;
  const dropped = {} as Record<Stream, number>;
  for (const s of STREAMS) {
    acked[s] = m.get(ackKey(s)) ?? 0;
    dropped[s] = m.get(dropKey(s)) ?? 0;
  }
  return { acked, dropped };
}

/** Raises a stream's acknowledged mark (never lowers it). */
export async function saveAcked(c: DuckDBConnection, stream: Stream, seq: number): Promise<void> {
  await c.run(
    `INSERT INTO meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value::BIGINT, excluded.value::BIGINT)::VARCHAR`,
    [ackKey(stream), String(seq)],
  );
}

/** Adds to a stream's dropped-before-sent count; run inside the deleting transaction. */
export async function addDropped(c: DuckDBConnection, stream: Stream, n: number): Promise<void> {
  if (n <= 0) return;
  await c.run(
    `INSERT INTO meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = (meta.value::BIGINT + excluded.value::BIGINT)::VARCHAR`,
    [dropKey(stream), String(n)],
  );
}
