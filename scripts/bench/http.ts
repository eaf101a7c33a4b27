// HTTP push bench: `npm run bench -- http [--seconds 5] [--clients 50] [--batch 100]`
// `clients` keep-alive clients (undici, in a child process so this process measures the
// gateway alone) POST `batch`-reading bodies to /ingest/v1/{device}, each as its own device
// with a bearer token: readings/s committed (each 200 comes after the commit), CPU, RSS.
// Baseline in the same run: a bare fastify route that only parses the same body. Then
// webhook delivery: events/s to a local receiver, signatures on, each delivery durable first.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { sha256Hex } from '../../gateway/kernel/secrets.js';
import { int, num, parseOptions } from './lib/cli.js';
import { Child, Guard, LOOPBACK, libScript } from './lib/procs.js';
import { printReport, progress, sleep } from './lib/report.js';
import { Peaks, UsageWindow, peaksMB } from './lib/sampling.js';
import { benchSite, startGateway } from './lib/site.js';
import { round } from './lib/stats.js';
import type { HttpLoadArgs, HttpLoadResult } from './lib/http-load.js';

type Opts = { seconds: number; clients: number; batch: number };

async function drive(
  guard: Guard,
  args: HttpLoadArgs,
): Promise<HttpLoadResult & { window: ReturnType<UsageWindow['close']>; peaks: ReturnType<typeof peaksMB> }> {
  const load = new Child('http-load', [libScript('http-load'), JSON.stringify(args)]);
  guard.children.add(load);
  await load.waitFor('ready');
  const peaks = new Peaks(100).start();
  const usage = new UsageWindow();
  const result = JSON.parse(await load.ask('run', 'done', (args.seconds + 60) * 1000)) as HttpLoadResult;
  const window = usage.close(undefined, load.cpuSeconds() ?? 0);
  peaks.stop();
  await load.stop();
  return { ...result, window, peaks: peaksMB(peaks) };
}

/** Webhook delivery: `events` alert events committed at once, delivered signed to a local receiver. */
async function webhookRun(guard: Guard, events: number) {
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, LOOPBACK, r));
  process.env.OUTPOST_BENCH_WEBHOOK_SECRET = 'whsec_' + Buffer.from('bench-secret-bench-secret').toString('base64');
  const url = `http://${LOOPBACK}:${(receiver.address() as AddressInfo).port}/hook`;
  const site = benchSite(guard.tempDir('http-webhooks'), {
    webhooks: { endpoints: [{ id: 'bench', url, secretEnv: 'OUTPOST_BENCH_WEBHOOK_SECRET', types: ['alert.*'], concurrency: 8 }] },
  });
  const { gw } = await startGateway(site, 'bench.yaml');
  try {
    const t0 = performance.now();
    // Distinct subjects: per-subject ordering would otherwise serialise them.
    await Promise.all(Array.from({ length: events }, (_, i) => gw.emitEvent('alert.raised', 'bench', { i }, `s-${i % 256}`)));
    while (received < events && performance.now() - t0 < 300_000) await sleep(10);
    const seconds = (performance.now() - t0) / 1000;
    return { events, delivered: received, perSec: round(received / seconds, 0)! };
  } finally {
    await gw.stop();
    await new Promise((r) => receiver.close(r));
  }
}

export async function main(argv: string[]): Promise<void> {
  const opts: Opts = parseOptions('http', argv, { seconds: num(5, 0.5, 600), clients: int(50, 1, 1000), batch: int(100, 1, 10_000) });
  const log = progress('http');
  const guard = new Guard();
  const tokens = Array.from({ length: opts.clients }, (_, i) => `bench-token-${i}-${sha256Hex(String(i)).slice(0, 16)}`);
  try {
    const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
    app.post('/ingest/v1/:device', async (req) => ({ stored: Array.isArray(req.body) ? req.body.length : 0 }));
    await app.listen({ host: LOOPBACK, port: 0 });
    const bareUrl = `http://${LOOPBACK}:${(app.server.address() as { port: number }).port}`;
    log('bare fastify route');
    const bare = await drive(guard, { url: bareUrl, tokens, ...opts });
    await app.close();

    const site = benchSite(guard.tempDir('http'), {
      drivers: { http: { enabled: true, requestsPerMinute: 10_000_000, maxBodyBytes: 16 * 1024 * 1024 } },
      devices: tokens.map((tok, i) => ({ id: `dev-${i}`, zone: 'bench', http: { auth: { bearer: { sha256: sha256Hex(tok) } } } })),
    });
    const { gw } = await startGateway(site, 'bench.yaml');
    let gateway;
    try {
      log('gateway push ingest');
      gateway = await drive(guard, { url: gw.api.url, tokens, ...opts });
    } finally {
      await gw.stop();
    }
    log('webhook delivery');
    const webhooks = await webhookRun(guard, 5_000);
    const ratio = round(gateway.readingsPerSec / bare.readingsPerSec);
    printReport(
      'http',
      { ...opts, bareFastify: bare, gateway, ratioVsBare: ratio, webhooks },
      `http: ${gateway.readingsPerSec} readings/s committed from ${opts.clients} keep-alive clients × ${opts.batch}-reading batches ` +
        `(${ratio}× a bare fastify route parsing the same bodies, ${bare.readingsPerSec}/s); p99 ${gateway.p99Ms} ms vs ${bare.p99Ms} ms; ` +
        `gateway CPU ${gateway.window.cpuPercent}%, peak RSS ${gateway.peaks.peakRssMB} MB; webhooks: ${webhooks.perSec} signed deliveries/s (${webhooks.delivered}/${webhooks.events})`,
    );
  } finally {
    guard.release();
  }
}
