// The outbox is the store itself: batches are cut straight from the DuckDB tables by seq,
// written by DuckDB as zstd Parquet (compact, columnar, typed; the cloud reads it with
// read_parquet). The only sync state is, per stream, the highest seq the cloud has
// acknowledged and how many unsent rows retention had to drop — both in `meta`, so they
// are committed with the same durability as the data.
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { STREAMS, columnsOf, type Stream, type StreamStatus } from './protocol.js';
import { STREAM_TABLE, streamFilter } from '../gateway/kernel/streams.js';
import { readMarks, saveAcked } from '../gateway/store/sync-marks.js';
import { withConnection } from '../gateway/kernel/duckdb.js';

export interface Batch {
  stream: Stream;
  first: number;
  last: number;
  rows: number;
  body: Buffer;
}

const TABLE = STREAM_TABLE;
const TIME: Record<'readings' | 'events', string> = { readings: 'ts', events: 'time' };

/** The batch columns are the protocol's, cast to its types (events.data is JSON here, text on the wire). */
const selectList = (s: Stream) =>
  columnsOf(s)
    .map(([name, type]) => `${name}::${type} AS ${name}`)
    .join(', ');

/** A path as a SQL string literal (COPY and read_parquet take no parameters). */
const sqlPath = (p: string) => `'${p.replaceAll("'", "''")}'`;

// Within a telemetry batch, rows of one series sit together: neighbouring values are then
// close and compress better (bench: 4.38 → 3.94 B/reading with level 9). The cloud needs
// no order inside a batch: it checks the seq range and uniqueness, and keeps seq.
const ORDER: Record<Stream, string> = { telemetry: 'point, device, seq', priority: 'seq', events: 'seq' };

export class Outbox {
  constructor(
    private readonly instance: DuckDBInstance,
    private readonly tmpDir: string,
  ) {}

  marks(): Promise<{ acked: Record<Stream, number>; dropped: Record<Stream, number> }> {
    return withConnection(this.instance, readMarks);
  }

  async ack(stream: Stream, seq: number): Promise<void> {
    await withConnection(this.instance, (c) => saveAcked(c, stream, seq));
  }

  /** The next batch of a stream after `acked`, at most `limit` rows, or null when there is none. */
  async next(stream: Stream, acked: number, limit: number): Promise<Batch | null> {
    const table = TABLE[stream];
    const where = `seq > ${Math.trunc(acked)} AND ${streamFilter(stream)}`;
    return withConnection(this.instance, async (c) => {
      // Fix the upper bound first, so rows committed meanwhile cannot change the batch.
      const bound = (
        await c.runAndReadAll(
          `SELECT max(seq)::DOUBLE FROM (SELECT seq FROM ${table} WHERE ${where} ORDER BY seq LIMIT ${Math.trunc(limit)})`,
        )
      ).getRows()[0]?.[0];
      if (bound === null || bound === undefined) return null;
      const file = join(this.tmpDir, `batch-${randomUUID()}.parquet`);
      try {
        await c.run(
          `COPY (SELECT ${selectList(stream)} FROM ${table} WHERE ${where} AND seq <= ${Number(bound)} ORDER BY ${ORDER[stream]}) TO ${sqlPath(file)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9)`,
        );
        // Read the facts back from the file itself: retention may have deleted rows meanwhile.
        const [first, last, rows] = (
          await c.runAndReadAll(`SELECT min(seq)::DOUBLE, max(seq)::DOUBLE, count(*)::DOUBLE FROM read_parquet(${sqlPath(file)})`)
        ).getRows()[0] as [number | null, number | null, number];
        if (first === null || last === null || rows === 0) return null;
        return { stream, first, last, rows, body: await readFile(file) };
      } finally {
        await rm(file, { force: true });
      }
    });
  }

  /** Backlog per stream: unsent rows, their approximate bytes in the store, and the oldest one's time. */
  async status(): Promise<Record<Stream, StreamStatus>> {
    return withConnection(this.instance, async (c) => {
      const { acked, dropped } = await readMarks(c);
      const size = (
        await c.runAndReadAll(
          `SELECT (SELECT used_blocks::DOUBLE * block_size FROM pragma_database_size()), (SELECT count(*)::DOUBLE FROM readings) + (SELECT count(*)::DOUBLE FROM events)`,
        )
      ).getRows()[0] as [number, number];
      const bytesPerRow = size[1] > 0 ? size[0] / size[1] : 0;
      const out = {} as Record<Stream, StreamStatus>;
      for (const s of STREAMS) {
        const table = TABLE[s];
        const [rows, oldest] = (
          await c.runAndReadAll(
            `SELECT count(*)::DOUBLE, epoch_ms(min(${TIME[table]}))::DOUBLE FROM ${table} WHERE seq > ${acked[s]} AND ${streamFilter(s)}`,
          )
        ).getRows()[0] as [number, number | null];
        out[s] = {
          backlogRows: rows,
          backlogBytes: Math.round(rows * bytesPerRow),
          oldestUnsentTs: oldest,
          ackedSeq: acked[s],
          dropped: dropped[s],
        };
      }
      return out;
    });
  }
}
