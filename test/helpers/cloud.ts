// A real cloud API in-process (127.0.0.1, port 0, fresh temp dir), plus what a test needs
// to talk to it like a gateway: Parquet batches built by DuckDB, HMAC-signed requests.
// Kept small and stable: the gateway uploader's end-to-end tests use it too.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { stringify } from 'yaml';
import { createLogger } from '../../gateway/kernel/log.js';
import { newApiToken, sha256Hex } from '../../gateway/kernel/secrets.js';
import { H, PARQUET_MEDIA_TYPE, authorization, batchKey, columnsOf, type IngestResponse, type Stream } from '../../sync/protocol.js';
import { parseCloudConfig } from '../../sync/cloud/config.js';
import { startCloudServer, type CloudServer } from '../../sync/cloud/server.js';
import type { CloudStore } from '../../sync/cloud/store.js';
import { api, deepMerge, freePort, tempDir } from './gateway.js';

export interface TestCloud {
  url: string;
  dir: string;
  /** An admin office token: the generated one, or `test-admin` when overrides configure `tokens`. */
  adminToken: string;
  mintEnrollmentToken(site: string, gatewayId?: string): Promise<string>;
  /** For assertions that the HTTP API does not expose. */
  store: CloudStore;
  server: CloudServer;
  stop(): Promise<void>;
}

export interface GatewayCreds {
  gatewayId: string;
  site: string;
  secret: string;
}

/** The config a test cloud runs with: `overrides` deep-merged over a loopback, silent base. */
export function cloudConfigObject(dir: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = { dataDir: dir, log: { level: process.env.TEST_LOG_LEVEL ?? 'silent' }, http: { host: '127.0.0.1', port: 0 } };
  return deepMerge(base, overrides);
}

/**
 * With `tokens` in overrides, a `test-admin` token is added to them, so `adminToken`
 * (and mintEnrollmentToken) always work.
 */
export async function startCloud(overrides: Record<string, unknown> = {}, dir = tempDir('outpost-cloud-')): Promise<TestCloud> {
  let adminToken = '';
  if (Array.isArray(overrides.tokens)) {
    adminToken = newApiToken();
    overrides = {
      ...overrides,
      tokens: [...(overrides.tokens as unknown[]), { name: 'test-admin', role: 'admin', sha256: sha256Hex(adminToken) }],
    };
  }
  const config = parseCloudConfig(stringify(cloudConfigObject(dir, overrides)), 'test-cloud.yaml');
  const server = await startCloudServer(config, createLogger(config.log.level, { pretty: false, name: 'outpost-cloud' }));
  if (server.adminTokenFile) adminToken = readFileSync(server.adminTokenFile, 'utf8').trim();
  return {
    url: server.url,
    dir,
    adminToken,
    store: server.store,
    server,
    async mintEnrollmentToken(site, gatewayId) {
      const res = await fetch(`${server.url}/api/v1/enrollment-tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ site, ...(gatewayId !== undefined ? { gatewayId } : {}) }),
      });
      const body = (await res.json()) as { token?: string; error?: string };
      if (res.status !== 201 || !body.token) throw new Error(`minting an enrollment token failed: HTTP ${res.status} ${body.error ?? ''}`);
      return body.token;
    },
    stop: () => server.close(),
  };
}

/** Writes `<dir>/cloud.yaml` on a free port, for `node dist/gateway/cli.js cloud --config <file>`. */
export async function writeCloudConfig(
  dir: string,
  overrides: Record<string, unknown> = {},
): Promise<{ file: string; url: string; port: number }> {
  const port = await freePort();
  const file = join(dir, 'cloud.yaml');
  writeFileSync(file, stringify(cloudConfigObject(dir, deepMerge({ http: { port } }, overrides))));
  return { file, url: `http://127.0.0.1:${port}`, port };
}

/** Polls /health until the cloud answers (a child process needs a moment to start). */
export async function waitForCloud(url: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`cloud at ${url} did not become healthy within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const readAdminToken = (dir: string) => readFileSync(join(dir, 'admin.token'), 'utf8').trim();

/** Enrolls `gatewayId` with a freshly minted token; returns its credentials. */
export async function enrollGateway(cloud: TestCloud, gatewayId: string, site = 'test'): Promise<GatewayCreds> {
  const token = await cloud.mintEnrollmentToken(site, gatewayId);
  const res = await fetch(`${cloud.url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, gatewayId, site }),
  });
  if (res.status !== 200) throw new Error(`enroll failed: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as GatewayCreds;
}

export type Row = Record<string, unknown>;

/**
 * A zstd Parquet file of `rows` with the stream's columns (or `columns`, to build a wrong
 * one). `ts`/`time` may be ms or ISO; `data` may be any JSON value (stored as JSON text).
 */
export async function parquetBatch(
  stream: Stream,
  rows: Row[],
  columns: readonly (readonly [string, string])[] = columnsOf(stream),
): Promise<Buffer> {
  const dir = join(tmpdir(), `outpost-pq-${randomUUID()}`);
  mkdirSync(dir);
  const json = join(dir, 'rows.json');
  const out = join(dir, 'batch.parquet');
  const lines = rows.map((r) => {
    const o: Record<string, unknown> = {};
    for (const [name] of columns) {
      const v = r[name];
      o[name] =
        (name === 'ts' || name === 'time') && typeof v === 'number'
          ? new Date(v).toISOString()
          : name === 'data' && v !== undefined && v !== null
            ? JSON.stringify(v)
            : (v ?? null);
    }
    return JSON.stringify(o);
  });
  writeFileSync(json, lines.join('\n') + '\n');
  const inst = await DuckDBInstance.create(':memory:');
  try {
    const c = await inst.connect();
    const cols = columns.map(([n, t]) => `'${n}': '${t}'`).join(', ');
    await c.run(
      `COPY (SELECT * FROM read_json('${json}', format = 'newline_delimited', columns = {${cols}})) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`,
    );
    c.closeSync();
    return readFileSync(out);
  } finally {
    inst.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SignedResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** A request signed as the gateway; `body` objects are sent as JSON. */
export async function signedFetch<T = unknown>(
  url: string,
  gw: Pick<GatewayCreds, 'gatewayId' | 'secret'>,
  method: string,
  path: string,
  opts: {
    body?: Buffer | Record<string, unknown>;
    key?: string;
    headers?: Record<string, string>;
    now?: number;
    contentType?: string;
  } = {},
): Promise<SignedResponse<T>> {
  const raw = opts.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(JSON.stringify(opts.body));
  const key = opts.key ?? '';
  const headers: Record<string, string> = {
    [H.auth]: authorization(gw.gatewayId, gw.secret, method, path, key, raw, opts.now ?? Date.now()),
    ...(key ? { [H.idempotencyKey]: key } : {}),
    ...(opts.body !== undefined
      ? { 'content-type': opts.contentType ?? (Buffer.isBuffer(opts.body) ? PARQUET_MEDIA_TYPE : 'application/json') }
      : {}),
    ...opts.headers,
  };
  const res = await fetch(url + path, { method, headers, ...(opts.body !== undefined ? { body: raw } : {}) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* empty (204) */
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

/** Sends rows as one batch with the headers a gateway would send (override any via `headers`). */
export async function ingest(
  url: string,
  gw: Pick<GatewayCreds, 'gatewayId' | 'secret'>,
  stream: Stream,
  rows: Row[],
  opts: { body?: Buffer; headers?: Record<string, string>; key?: string; now?: number } = {},
): Promise<SignedResponse<IngestResponse & { error?: string }>> {
  const seqs = rows.map((r) => Number(r.seq));
  const first = Math.min(...seqs);
  const last = Math.max(...seqs);
  const body = opts.body ?? (await parquetBatch(stream, rows));
  return signedFetch(url, gw, 'POST', '/api/v1/ingest', {
    body,
    key: opts.key ?? batchKey(gw.gatewayId, stream, first, last),
    headers: { [H.stream]: stream, [H.firstSeq]: String(first), [H.lastSeq]: String(last), [H.rows]: String(rows.length), ...opts.headers },
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  });
}

/** An office API call with a bearer token. */
export function office<T = unknown>(
  url: string,
  token: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  return api<T>(url, path, token, init);
}
