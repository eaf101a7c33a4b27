// Child process of the sync bench: the sending end of the jsonl baseline, i.e. what a
// gateway would do without Parquet. From the gateway's DuckDB file (read-only; the
// gateway is not running) it takes the next --batch readings after the acknowledged seq
// (same top-N-by-seq cut as the outbox), builds one JSON line {seq, ts (epoch ms), device,
// point, value, unit} per reading with JSON.stringify, gzips the lot (node zlib, default
// level 6, on the libuv pool like any zlib call), signs it with the product's HMAC code and
// POSTs it with undici; the next batch is cut only after the receiver acknowledged the
// last one (one in flight, like the uploader). The acknowledged seq is kept in memory.
//
//   node --max-old-space-size=256 sync-jsonl-sender.js <db> <url> <batch> <lastSeq> <maxSeconds>
//
// prints `started {…}` when the database is open, `done {…}` at the end.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { Agent, request } from 'undici';
import { authorization } from '../../../sync/protocol.js';
import { GATEWAY_ID, JSONL_SECRET } from './sync-setup.js';
import { ProcessWindow, Stages, runMain, say } from './sync-measure.js';
import { SAMPLE_EVERY_MS } from './sync-setup.js';

const gzipAsync = promisify(gzip);
/** The gateway's default store.memoryLimitMB. */
const MEMORY_LIMIT_MB = 256;

async function main(): Promise<void> {
  const [dbPath, url, batchRaw, lastSeqRaw, maxSecondsRaw] = process.argv.slice(2);
  const batch = Number(batchRaw);
  const lastSeq = Number(lastSeqRaw);
  const maxSeconds = Number(maxSecondsRaw);
  if (!dbPath || !url || !(batch > 0) || !Number.isSafeInteger(lastSeq) || !(maxSeconds > 0)) {
    throw new Error('usage: sync-jsonl-sender.js <db> <url> <batch> <lastSeq> <maxSeconds>');
  }
  const instance = await DuckDBInstance.create(dbPath, { access_mode: 'READ_ONLY', memory_limit: `${MEMORY_LIMIT_MB}MB` });
  const conn = await instance.connect();
  const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
  const stages = new Stages();
  const window = new ProcessWindow();
  const batches: { rows: number; rawBytes: number; bytes: number; prepareMs: number; uploadMs: number }[] = [];
  say('started', { pid: process.pid });
  window.start(SAMPLE_EVERY_MS);
  const deadline = window.startedAt + maxSeconds * 1000;
  let acked = 0;
  let error: string | null = null;
  try {
    while (acked < lastSeq && performance.now() < deadline) {
      const t0 = performance.now();
      const rows = await stages.time('read rows from DuckDB into JS', async () =>
        (
          await conn.runAndReadAll(
            `SELECT seq::DOUBLE, epoch_ms(ts)::DOUBLE, device, point, value, unit FROM readings WHERE seq > ${acked} ORDER BY seq LIMIT ${batch}`,
          )
        ).getRows(),
      );
      if (rows.length === 0) break;
      const raw = await stages.time('JSON lines (JSON.stringify per reading)', () => {
        const lines: string[] = new Array(rows.length);
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!;
          lines[i] = JSON.stringify({ seq: r[0], ts: r[1], device: r[2], point: r[3], value: r[4], unit: r[5] });
        }
        return Buffer.from(lines.join('\n') + '\n');
      });
      const body = await stages.time('gzip (zlib default level)', () => gzipAsync(raw));
      const prepareMs = performance.now() - t0;
      const first = rows[0]![0] as number;
      const last = rows[rows.length - 1]![0] as number;
      const t = performance.now();
      const res = await request(`${url}/ingest`, {
        dispatcher: agent,
        method: 'POST',
        headers: {
          'content-type': 'application/x-ndjson',
          'content-encoding': 'gzip',
          authorization: authorization(GATEWAY_ID, JSONL_SECRET, 'POST', '/ingest', '', body),
          'x-first-seq': String(first),
          'x-last-seq': String(last),
          'x-rows': String(rows.length),
        },
        body,
      });
      const text = await res.body.text();
      const uploadMs = performance.now() - t;
      stages.add('upload: signed POST /ingest until the ack (receiver work included)', uploadMs);
      if (res.statusCode !== 200) throw new Error(`POST /ingest: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
      const ack = JSON.parse(text) as { ackedSeq: number };
      if (!(ack.ackedSeq >= last)) throw new Error(`the receiver acknowledged only up to seq ${ack.ackedSeq}, sent up to ${last}`);
      acked = last;
      batches.push({ rows: rows.length, rawBytes: raw.length, bytes: body.length, prepareMs, uploadMs });
    }
  } catch (err) {
    error = (err as Error).message;
  }
  const figures = window.close();
  say('done', { complete: acked >= lastSeq, ackedSeq: acked, error, window: figures, batches, split: stages.snapshot() });
  await agent.close();
  conn.closeSync();
  instance.closeSync();
}

runMain(main, true);
