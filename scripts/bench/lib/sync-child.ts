// The sync bench's child processes, one role each (a role imports only its own modules):
//
//   node sync-child.js cloud <cloud.yaml>       the cloud API as `outpost cloud` runs it; `ready <url> <admin token file>`
//   node sync-child.js receiver <dir>           the jsonl baseline's receiver; `ready <port>`
//   node --max-old-space-size=256 sync-child.js gateway <site.yaml> <lastSeq> <maxSeconds>
//   node --max-old-space-size=256 sync-child.js sender <db> <url> <batch> <lastSeq> <maxSeconds>
//
// The servers answer `mark` and `stats`; the senders print `started`, drain the backlog, print
// `drained`/`done` with their own figures (CPU, RSS, batches), and exit.
import { runChild, say } from './child-main.js';
import { procMemory } from './procs.js';
import { UsageWindow } from './sampling.js';
import { GATEWAY_ID, JSONL_SECRET, SITE } from './sync-setup.js';
import { mb } from './stats.js';

const [role, ...args] = process.argv.slice(2);

/** A sender's window: its CPU (all threads), main-thread busy share and RSS high-water mark, from start to close. */
function senderWindow() {
  const w = new UsageWindow();
  return { startedAt: w.startedAt, close: (end = performance.now()) => ({ ...w.close(end), vmHwmMB: mb(procMemory('self')?.hwm) }) };
}

// The servers' main-thread busy share counts from `mark` (the drain starts).
let elu0 = performance.eventLoopUtilization();
const commands = {
  mark: () => void ((elu0 = performance.eventLoopUtilization()), say('mark')),
  stats: () => say('stats', { mainThreadBusyPercent: Math.round(100 * performance.eventLoopUtilization(elu0).utilization) }),
};

async function cloud(configPath: string) {
  const { pino } = await import('pino');
  const { loadCloudConfigFile } = await import('../../../sync/cloud/config.js');
  const { startCloudServer } = await import('../../../sync/cloud/server.js');
  const config = loadCloudConfigFile(configPath);
  const server = await startCloudServer(config, pino({ name: 'outpost-cloud', level: config.log.level }, pino.destination(2)));
  say('ready', `${server.url} ${server.adminTokenFile ?? ''}`);
  return { close: () => server.close() };
}

/** Replaces an async method on a prototype with a wrapper that calls `done(ms, args, result)`; the product code runs unchanged. */
function wrapAsync(proto: object, name: string, done: (ms: number, args: unknown[], result: unknown) => void): void {
  const table = proto as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = table[name];
  table[name] = async function (this: unknown, ...a: unknown[]) {
    const t = performance.now();
    const result = await original.apply(this, a);
    done(performance.now() - t, a, result);
    return result;
  };
}

// The real gateway draining the backlog with the product's uploader, timed from Uploader.start() to
// its saved ack of the last seq; per batch, Outbox.next (the cut) and CloudClient.call (the round trip).
async function gateway(configPath: string, lastSeq: number, maxSeconds: number) {
  const { pino } = await import('pino');
  const { loadConfigFile } = await import('../../../config/site.js');
  const { Gateway } = await import('../../../gateway/gateway.js');
  const { CloudClient } = await import('../../../sync/client.js');
  const { Outbox } = await import('../../../sync/outbox.js');
  const { Uploader } = await import('../../../sync/uploader.js');
  let window: ReturnType<typeof senderWindow> | undefined;
  const batches: Array<{ rows: number; bytes: number; cutMs: number; uploadMs?: number }> = [];
  let [drainedAt, ackedSeq, onDrained] = [null as number | null, 0, () => undefined as void];
  const drained = new Promise<void>((r) => (onDrained = r));
  // What ran before the uploader (opening the store, the writer's seq scan) is start-up.
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the uploader as `this`
  const start = Uploader.prototype.start;
  Uploader.prototype.start = function (this: InstanceType<typeof Uploader>) {
    window = senderWindow();
    start.call(this);
  };
  wrapAsync(Outbox.prototype, 'next', (ms, [stream], result) => {
    const b = result as { rows: number; body: Buffer } | null;
    if (b && stream === 'telemetry') batches.push({ rows: b.rows, bytes: b.body.length, cutMs: ms });
  });
  wrapAsync(CloudClient.prototype, 'call', (ms, [, path]) => {
    const last = batches[batches.length - 1];
    if (path === '/api/v1/ingest' && last && last.uploadMs === undefined) last.uploadMs = ms;
  });
  wrapAsync(Outbox.prototype, 'ack', (_ms, [stream, seq]) => {
    if (stream === 'telemetry') ackedSeq = Math.max(ackedSeq, seq as number);
    if (ackedSeq >= lastSeq && drainedAt === null) {
      drainedAt = performance.now();
      onDrained();
    }
  });
  const t0 = performance.now();
  const gw = await Gateway.start({
    config: loadConfigFile(configPath),
    log: pino({ name: 'outpost', level: 'warn' }, pino.destination(2)),
  });
  const startSeconds = (performance.now() - t0) / 1000;
  if (!gw.sync) throw new Error('sync is not enabled in the site config');
  say('started', { pid: process.pid, startSeconds });
  const deadline = setTimeout(onDrained, maxSeconds * 1000);
  await drained;
  clearTimeout(deadline);
  const figures = window?.close(drainedAt ?? performance.now());
  const { streams, lastError } = await gw.sync.status();
  const syncRowsTotal = (await gw.metrics.sync.syncRows.get()).values.reduce((n, v) => n + v.value, 0);
  const status = { backlogRows: streams.telemetry.backlogRows, lastError, syncRowsTotal };
  say('drained', { complete: drainedAt !== null, startSeconds, ackedSeq, window: figures, batches, status });
  await gw.stop('bench done');
  return { done: true };
}

// A gateway without Parquet: from its DuckDB file (read-only) the next `batch` readings after the ack
// (the outbox's cut), a JSON line each, gzip (zlib default level), the product's HMAC, one POST in
// flight like the uploader; the ack is kept in memory.
async function sender(dbPath: string, url: string, batch: number, lastSeq: number, maxSeconds: number) {
  const { promisify } = await import('node:util');
  const gzip = promisify((await import('node:zlib')).gzip);
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const { Agent, request } = await import('undici');
  const { authorization: sign } = await import('../../../sync/protocol.js');
  // memory_limit: the gateway's default store.memoryLimitMB.
  const instance = await DuckDBInstance.create(dbPath, { access_mode: 'READ_ONLY', memory_limit: '256MB' });
  const conn = await instance.connect();
  const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
  const batches: Array<{ rows: number; rawBytes: number; bytes: number; prepareMs: number; uploadMs: number }> = [];
  say('started', { pid: process.pid });
  const window = senderWindow();
  let [acked, error] = [0, null as string | null];
  try {
    while (acked < lastSeq && performance.now() < window.startedAt + maxSeconds * 1000) {
      const t0 = performance.now();
      const sql = `SELECT seq::DOUBLE, epoch_ms(ts)::DOUBLE, device, point, value, unit FROM readings WHERE seq > ${acked} ORDER BY seq LIMIT ${batch}`;
      const rows = (await conn.runAndReadAll(sql)).getRows();
      if (rows.length === 0) break;
      const raw = Buffer.from(
        rows.map((r) => JSON.stringify({ seq: r[0], ts: r[1], device: r[2], point: r[3], value: r[4], unit: r[5] })).join('\n') + '\n',
      );
      const body = await gzip(raw);
      const [last, t] = [rows[rows.length - 1][0] as number, performance.now()];
      const authorization = sign(GATEWAY_ID, JSONL_SECRET, 'POST', '/ingest', '', body);
      const headers = { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip', authorization };
      const res = await request(`${url}/ingest`, { dispatcher: agent, method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`POST /ingest: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
      const ack = JSON.parse(text) as { ackedSeq: number };
      if (!(ack.ackedSeq >= last)) throw new Error(`the receiver acknowledged only up to seq ${ack.ackedSeq}, sent up to ${last}`);
      acked = last;
      batches.push({ rows: rows.length, rawBytes: raw.length, bytes: body.length, prepareMs: t - t0, uploadMs: performance.now() - t });
    }
  } catch (err) {
    error = (err as Error).message;
  }
  say('done', { complete: acked >= lastSeq, ackedSeq: acked, error, window: window.close(), batches });
  await agent.close();
  conn.closeSync();
  instance.closeSync();
  return { done: true };
}

// The receiving end, node:http, one body at a time: checks the HMAC (the product's code, as the cloud
// does), gunzips, parses every line, appends the rows above its mark to a table shaped like the
// cloud's, advances the mark in the same transaction and acks after COMMIT. No idempotency keys.
async function receiver(dir: string) {
  const { createServer } = await import('node:http');
  const path = await import('node:path');
  const { promisify } = await import('node:util');
  const gunzip = promisify((await import('node:zlib')).gunzip);
  const { DuckDBInstance, DuckDBTimestampTZValue } = await import('@duckdb/node-api');
  const { parseAuthorization, verifySignature } = await import('../../../sync/protocol.js');
  // memory_limit: the cloud's default db.memoryLimitMB.
  const instance = await DuckDBInstance.create(path.join(dir, 'receiver.duckdb'), { memory_limit: '1024MB' });
  const conn = await instance.connect();
  await conn.run(`CREATE TABLE readings (gateway_id VARCHAR NOT NULL, site VARCHAR NOT NULL, seq BIGINT NOT NULL, ts TIMESTAMPTZ NOT NULL,
     device VARCHAR NOT NULL, point VARCHAR NOT NULL, value DOUBLE, text VARCHAR, unit VARCHAR, quality VARCHAR)`);
  await conn.run('CREATE TABLE marks (gateway_id VARCHAR PRIMARY KEY, acked_seq BIGINT NOT NULL)');
  const app = await conn.createAppender('readings');
  let acked = 0;
  const fail = (status: number, message: string) => Object.assign(new Error(message), { status });
  async function ingest(req: import('node:http').IncomingMessage, body: Buffer): Promise<{ ackedSeq: number; inserted: number }> {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth || !verifySignature(JSONL_SECRET, auth, 'POST', req.url ?? '', '', body)) throw fail(401, 'bad signature');
    const text = (await gunzip(body)).toString('utf8');
    const rows: Array<{ seq: number; ts: number; device: string; point: string; value: number | null; unit: string | null }> = [];
    for (let from = 0; from < text.length;) {
      const to = text.indexOf('\n', from) < 0 ? text.length : text.indexOf('\n', from);
      if (to > from) rows.push(JSON.parse(text.slice(from, to)) as (typeof rows)[number]);
      from = to + 1;
    }
    const last = rows[rows.length - 1]?.seq ?? acked;
    if (last <= acked) return { ackedSeq: acked, inserted: 0 };
    await conn.run('BEGIN TRANSACTION');
    try {
      let inserted = 0;
      for (const r of rows) {
        if (r.seq <= acked) continue;
        app.appendVarchar(GATEWAY_ID);
        app.appendVarchar(SITE);
        app.appendBigInt(BigInt(r.seq));
        app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(r.ts) * 1000n));
        app.appendVarchar(r.device);
        app.appendVarchar(r.point);
        if (r.value === null) app.appendNull();
        else app.appendDouble(r.value);
        app.appendNull();
        if (r.unit === null) app.appendNull();
        else app.appendVarchar(r.unit);
        app.appendNull();
        app.endRow();
        inserted++;
      }
      app.flushSync();
      await conn.run('INSERT INTO marks VALUES ($1, $2) ON CONFLICT (gateway_id) DO UPDATE SET acked_seq = excluded.acked_seq', [
        GATEWAY_ID,
        BigInt(last),
      ]);
      await conn.run('COMMIT');
      acked = last;
      return { ackedSeq: acked, inserted };
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  // One request at a time, in arrival order (the sender keeps one in flight anyway).
  let queue: Promise<unknown> = Promise.resolve();
  const http = createServer((req, res) => {
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const replyError = (err: Error & { status?: number }) => reply(err.status ?? 500, { error: err.message });
    if (req.method !== 'POST' || req.url !== '/ingest') return void reply(404, { error: 'not found' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).once('error', replyError);
    req.once('end', () => void (queue = queue.then(() => ingest(req, Buffer.concat(chunks)).then((ack) => reply(200, ack), replyError))));
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  say('ready', String((http.address() as { port: number }).port));
  return {
    close: async () => {
      http.close();
      http.closeAllConnections();
      await queue;
      app.closeSync();
      await conn.run('CHECKPOINT');
      conn.closeSync();
      instance.closeSync();
    },
  };
}

const n = (i: number) => Number(args[i]);
const roles: Record<string, () => Promise<{ close?: () => Promise<unknown>; done?: boolean }>> = {
  cloud: () => cloud(args[0]),
  receiver: () => receiver(args[0]),
  gateway: () => gateway(args[0], n(1), n(2)),
  sender: () => sender(args[0], args[1], n(2), n(3), n(4)),
};
runChild(
  roles[role] ?? (() => Promise.reject(new Error(`usage: sync-child.js cloud|receiver|gateway|sender …, got "${role}"`))),
  role in { cloud: 1, receiver: 1 } ? commands : {},
  30_000,
);
