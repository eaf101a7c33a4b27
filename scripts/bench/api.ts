// `npm run bench -- api [--seconds 3] [--connections 10]`: what the local API's security
// costs per request. GET /api/v1/devices through the real gateway API (bearer token,
// rate-limit bookkeeping and headers), over plain HTTP and over HTTPS (the generated
// certificate), against a bare fastify route answering the same JSON on the same machine
// in the same run. Keep-alive clients (undici), so TLS costs its record layer, not a
// handshake per request. Client and server share this process: the ratio is what counts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { parseConfig } from '../../config/site.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/kernel/log.js';
import { newApiToken, sha256Hex } from '../../gateway/kernel/secrets.js';
import { round, summarize } from './lib/stats.js';

interface Figures {
  requests: number;
  perSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

async function load(url: string, path: string, headers: Record<string, string>, seconds: number, connections: number, ca?: string): Promise<Figures> {
  const pool = new Pool(url, { connections, ...(ca ? { connect: { ca } } : {}) });
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      const res = await pool.request({ path, method: 'GET', headers });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url}${path}: HTTP ${res.statusCode}`);
      latencies.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  const s = summarize(latencies);
  return { requests: latencies.length, perSec: round(latencies.length / elapsed, 0)!, p50Ms: round(s.p50, 3), p99Ms: round(s.p99, 3) };
}

async function gatewayRun(tls: boolean, seconds: number, connections: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-api-'));
  const token = newApiToken();
  const config = parseConfig(
    stringify({
      site: 'bench',
      dataDir: dir,
      log: { level: 'warn' },
      http: { host: '127.0.0.1', port: 0, tls: { mode: tls ? 'on' : 'off' }, tokens: [{ name: 'bench', role: 'viewer', sha256: sha256Hex(token) }], rateLimit: { requests: { max: 1e9 } } },
      drivers: { mqtt: { enabled: false } },
    }),
    'bench.yaml',
  );
  const gw = await Gateway.start({ config, log: createLogger('warn', { pretty: false }) });
  try {
    const ca = gw.api.tls ? readFileSync(gw.api.tls.certFile, 'utf8') : undefined;
    return await load(gw.api.url, '/api/v1/devices', { authorization: `Bearer ${token}` }, seconds, connections, ca);
  } finally {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bareRun(seconds: number, connections: number): Promise<Figures> {
  const app = Fastify({ logger: false });
  app.get('/api/v1/devices', async () => ({ devices: [] }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  try {
    return await load(`http://127.0.0.1:${addr.port}`, '/api/v1/devices', {}, seconds, connections);
  } finally {
    await app.close();
  }
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { seconds: { type: 'string', default: '3' }, connections: { type: 'string', default: '10' } } });
  const seconds = Number(values.seconds);
  const connections = Number(values.connections);
  const bare = await bareRun(seconds, connections);
  const plain = await gatewayRun(false, seconds, connections);
  const https = await gatewayRun(true, seconds, connections);
  const result = {
    bench: 'api',
    seconds,
    connections,
    bareFastify: bare,
    gatewayHttp: plain,
    gatewayHttps: https,
    ratioHttpVsBare: round(plain.perSec / bare.perSec),
    ratioHttpsVsBare: round(https.perSec / bare.perSec),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `api: authenticated + rate-limited GET ${plain.perSec}/s over HTTP (${result.ratioHttpVsBare}× bare fastify ${bare.perSec}/s), ` +
      `${https.perSec}/s over HTTPS (${result.ratioHttpsVsBare}×); p99 ${plain.p99Ms} / ${https.p99Ms} ms vs ${bare.p99Ms} ms`,
  );
}
