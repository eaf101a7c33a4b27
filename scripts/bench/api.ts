// API bench: what the local API's security costs per request. `npm run bench -- api [--seconds 3] [--connections 10]`
// GET /api/v1/devices through the real gateway API (bearer token, rate-limit bookkeeping), over HTTP
// and HTTPS (the generated certificate), against the baseline: a bare fastify route answering the same
// JSON. Keep-alive clients (undici), so TLS costs its record layer, not a handshake per request.
// Client and server share this process: the ratio is what counts.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { Pool } from 'undici';
// Loaded up front, as it always was: the bare run shares this process with the gateway's modules.
import '../../gateway/gateway.js';
import { newApiToken, sha256Hex } from '../../gateway/kernel/secrets.js';
import { int, num, parseOptions } from './lib/cli.js';
import { Guard, LOOPBACK } from './lib/procs.js';
import { printReport } from './lib/report.js';
import { benchSite, startGateway } from './lib/site.js';
import { round, summarize } from './lib/stats.js';

type Load = { seconds: number; connections: number };

/** `connections` keep-alive clients, each one request after the other, for `seconds`. */
async function load(url: string, { seconds, connections }: Load, headers: Record<string, string> = {}, ca?: string) {
  const pool = new Pool(url, { connections, ...(ca ? { connect: { ca } } : {}) });
  const latencies: number[] = [];
  const t0 = performance.now();
  const worker = async () => {
    while (performance.now() < t0 + seconds * 1000) {
      const t = performance.now();
      const res = await pool.request({ path: '/api/v1/devices', method: 'GET', headers });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  const s = summarize(latencies, 3);
  return { requests: latencies.length, perSec: round(latencies.length / elapsed, 0)!, p50Ms: s.p50, p99Ms: s.p99 };
}

async function gatewayRun(tls: boolean, opts: Load, guard: Guard) {
  const token = newApiToken();
  const tokens = [{ name: 'bench', role: 'viewer', sha256: sha256Hex(token) }];
  const site = benchSite(guard.tempDir('api'), {
    http: { host: LOOPBACK, port: 0, tls: { mode: tls ? 'on' : 'off' }, tokens, rateLimit: { requests: { max: 1e9 } } },
  });
  const { gw } = await startGateway(site, 'bench.yaml');
  try {
    const ca = gw.api.tls ? readFileSync(gw.api.tls.certFile, 'utf8') : undefined;
    return await load(gw.api.url, opts, { authorization: `Bearer ${token}` }, ca);
  } finally {
    await gw.stop();
  }
}

async function bareRun(opts: Load) {
  const app = Fastify({ logger: false });
  app.get('/api/v1/devices', async () => ({ devices: [] }));
  await app.listen({ host: LOOPBACK, port: 0 });
  try {
    return await load(`http://${LOOPBACK}:${(app.server.address() as { port: number }).port}`, opts);
  } finally {
    await app.close();
  }
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions('api', args, { seconds: num(3, 0.5, 600), connections: int(10, 1, 1_000) });
  const guard = new Guard();
  try {
    const bare = await bareRun(opts);
    const [plain, https] = [await gatewayRun(false, opts, guard), await gatewayRun(true, opts, guard)];
    const [ratioHttpVsBare, ratioHttpsVsBare] = [round(plain.perSec / bare.perSec), round(https.perSec / bare.perSec)];
    printReport(
      'api',
      { ...opts, bareFastify: bare, gatewayHttp: plain, gatewayHttps: https, ratioHttpVsBare, ratioHttpsVsBare },
      `api: authenticated + rate-limited GET ${plain.perSec}/s over HTTP (${ratioHttpVsBare}× bare fastify ${bare.perSec}/s), ` +
        `${https.perSec}/s over HTTPS (${ratioHttpsVsBare}×); p99 ${plain.p99Ms} / ${https.p99Ms} ms vs ${bare.p99Ms} ms`,
    );
  } finally {
    guard.release();
  }
}
