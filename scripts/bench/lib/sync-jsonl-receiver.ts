// Child process of the sync bench: the receiving end of the jsonl baseline. A minimal
// HTTP server (node:http, 127.0.0.1, a free port) that takes POST /ingest bodies of
// gzip-compressed JSON lines {seq, ts, device, point, value, unit}, checks the HMAC
// signature (the product's protocol code, as the cloud does), gunzips, JSON.parses every
// line, checks the row count and seq range against the headers, and appends the rows
// above its high-water mark to a DuckDB table shaped like the cloud's `readings`, with
// the mark advanced in the same transaction; it answers {ackedSeq, inserted} only after
// COMMIT. One request at a time. No idempotency keys or per-gateway state beyond that.
//
//   node sync-jsonl-receiver.js <dir>      prints `ready <port>`
//
// stdin: `reset` / `mark` / `stats` as in sync-cloud.ts (answerCommands). SIGTERM: checkpoint, close, exit.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { DuckDBInstance, DuckDBTimestampTZValue } from '@duckdb/node-api';
import { parseAuthorization, verifySignature } from '../../../sync/protocol.js';
import { GATEWAY_ID, JSONL_SECRET, LOOPBACK, SITE } from './sync-setup.js';
import { Stages, answerCommands, exitOnSignal, runMain, say } from './sync-measure.js';

const gunzipAsync = promisify(gunzip);
const MAX_BODY = 64 * 1024 * 1024;
/** Same as the cloud's default db.memoryLimitMB. */
const MEMORY_LIMIT_MB = 1024;

interface Line {
  seq: number;
  ts: number;
  device: string;
  point: string;
  value: number | null;
  unit: string | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy(new HttpError(413, 'body too large'));
      else chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: sync-jsonl-receiver.js <dir>');
  const instance = await DuckDBInstance.create(join(dir, 'receiver.duckdb'), { memory_limit: `${MEMORY_LIMIT_MB}MB` });
  const conn = await instance.connect();
  await conn.run(`CREATE TABLE readings (
     gateway_id VARCHAR NOT NULL, site VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMPTZ NOT NULL,
     device VARCHAR NOT NULL, point VARCHAR NOT NULL, value DOUBLE, text VARCHAR, unit VARCHAR, quality VARCHAR)`);
  await conn.run(`CREATE TABLE marks (gateway_id VARCHAR PRIMARY KEY, acked_seq BIGINT NOT NULL)`);
  const appender = await conn.createAppender('readings');
  let acked = 0;
  const stages = new Stages();

  const header = (req: IncomingMessage, name: string): number => {
    const raw = req.headers[name];
    if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw new HttpError(400, `${name}: must be an integer`);
    return Number(raw);
  };

  async function ingest(req: IncomingMessage, body: Buffer): Promise<{ ackedSeq: number; inserted: number }> {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth || !(await stages.time('verify the HMAC signature', () => verifySignature(JSONL_SECRET, auth, 'POST', req.url ?? '', '', body)))) {
      throw new HttpError(401, 'bad signature');
    }
    const first = header(req, 'x-first-seq');
    const last = header(req, 'x-last-seq');
    const count = header(req, 'x-rows');
    if (last <= acked) return { ackedSeq: acked, inserted: 0 };
    const text = await stages.time('gunzip', async () => (await gunzipAsync(body)).toString('utf8'));
    const rows = await stages.time('JSON.parse every line', () => {
      const out: Line[] = [];
      let from = 0;
      while (from < text.length) {
        let to = text.indexOf('\n', from);
        if (to < 0) to = text.length;
        if (to > from) out.push(JSON.parse(text.slice(from, to)) as Line);
        from = to + 1;
      }
      return out;
    });
    if (rows.length !== count) throw new HttpError(400, `body has ${rows.length} rows, x-rows says ${count}`);
    if (rows[0]?.seq !== first || rows[rows.length - 1]?.seq !== last) throw new HttpError(400, 'seq range does not match the headers');
    await stages.time('BEGIN', () => conn.run('BEGIN TRANSACTION'));
    try {
      const inserted = await stages.time('append rows (DuckDB appender)', () => {
        let n = 0;
        for (const r of rows) {
          if (r.seq <= acked) continue;
          appender.appendVarchar(GATEWAY_ID);
          appender.appendVarchar(SITE);
          appender.appendBigInt(BigInt(r.seq));
          appender.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(r.ts) * 1000n));
          appender.appendVarchar(r.device);
          appender.appendVarchar(r.point);
          if (r.value === null) appender.appendNull();
          else appender.appendDouble(r.value);
          appender.appendNull();
          if (r.unit === null) appender.appendNull();
          else appender.appendVarchar(r.unit);
          appender.appendNull();
          appender.endRow();
          n++;
        }
        appender.flushSync();
        return n;
      });
      await stages.time('advance the mark', () =>
        conn.run(`INSERT INTO marks VALUES ($1, $2) ON CONFLICT (gateway_id) DO UPDATE SET acked_seq = excluded.acked_seq`, [GATEWAY_ID, BigInt(last)]),
      );
      await stages.time('COMMIT', () => conn.run('COMMIT'));
      acked = last;
      return { ackedSeq: acked, inserted };
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  // One request at a time, in arrival order (the sender keeps one in flight anyway).
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const t = performance.now();
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
      stages.add('request: POST /ingest (body in → reply sent)', performance.now() - t);
    };
    if (req.method !== 'POST' || req.url !== '/ingest') return reply(404, { error: 'not found' });
    readBody(req).then(
      (body) => {
        stages.add('receive the body', performance.now() - t);
        queue = queue.then(() =>
          ingest(req, body).then(
            (ack) => reply(200, ack),
            (err: Error) => reply(err instanceof HttpError ? err.status : 500, { error: err.message }),
          ),
        );
      },
      (err: Error) => reply(err instanceof HttpError ? err.status : 400, { error: err.message }),
    );
  });

  answerCommands(stages, server, false);
  exitOnSignal(() => {
    server.close();
    server.closeAllConnections();
    return queue.then(async () => {
      appender.closeSync();
      await conn.run('CHECKPOINT');
      conn.closeSync();
      instance.closeSync();
    });
  });
  server.listen(0, LOOPBACK, () => {
    const addr = server.address();
    say(`ready ${typeof addr === 'object' && addr ? addr.port : 0}`);
  });
}

runMain(main, false);
