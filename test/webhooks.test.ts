// Outbound webhooks against a real gateway and a real receiver on loopback: the retry
// schedule (scaled down through webhooks.retryScheduleMs), the DLQ, 410, signatures
// (checked here with our own HMAC code), restarts mid-schedule, and per-subject order.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseConfig } from '../config/site.js';
import { outpost } from './helpers/cli.js';
import { api, metricValue, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';

interface Hit {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A receiver whose answer for each request is decided by `answer` (status code). */
async function receiver(
  answer: (h: Omit<Hit, 'status'>, n: number) => number,
): Promise<{ url: string; hits: Hit[]; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = { at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      const status = answer(h, hits.length);
      hits.push({ ...h, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

// The Standard Webhooks check, written out: HMAC-SHA256(key, id.timestamp.body), base64.
const RAW_KEY = randomBytes(24);
const SECRET = `whsec_${RAW_KEY.toString('base64')}`;
process.env.OUTPOST_TEST_WEBHOOK_SECRET = SECRET;
function signatureOk(h: Hit | Omit<Hit, 'status'>): boolean {
  const id = h.headers['webhook-id'] as string;
  const ts = h.headers['webhook-timestamp'] as string;
  const sig = (h.headers['webhook-signature'] as string).split(' ').find((s) => s.startsWith('v1,'));
  if (!id || !ts || !sig) return false;
  const expected = createHmac('sha256', RAW_KEY).update(`${id}.${ts}.${h.body}`).digest();
  const got = Buffer.from(sig.slice(3), 'base64');
  return got.length === expected.length && timingSafeEqual(got, expected) && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
}

const SCHEDULE = [100, 200, 300, 400, 500];
const site = (url: string, extra: Record<string, unknown> = {}) => ({
  webhooks: {
    retryScheduleMs: SCHEDULE,
    endpoints: [{ id: 'ops', url, secretEnv: 'OUTPOST_TEST_WEBHOOK_SECRET', types: ['alert.*', 'access.*'], concurrency: 2 }],
    ...extra,
  },
});
const metrics = async (g: TestGateway) => (await api<string>(g.httpUrl, '/metrics')).body;

async function setup(t: { teardown(fn: () => unknown): void }, answer: Parameters<typeof receiver>[0], extra?: Record<string, unknown>) {
  const r = await receiver(answer);
  const g = await startGateway({ ...site(r.url), ...extra });
  t.teardown(async () => {
    await g.stop();
    await r.close();
    removeDir(g.dir);
  });
  return { r, g };
}

t.test('a failing receiver is retried on the schedule, then delivered; the body is a signed CloudEvent', async (t) => {
  const { r, g } = await setup(t, (_h, n) => (n < 3 ? 503 : 204));
  await g.gw.emitEvent('alert.raised', 'alerts', { severity: 'high' }, 'door-1');
  await g.gw.emitEvent('reading.ignored', 'test', {}, 'door-1'); // not subscribed
  await waitFor(() => (r.hits.some((h) => h.status === 204) ? true : undefined), 'delivery', 5000);
  await new Promise((res) => setTimeout(res, 200));
  t.equal(r.hits.length, 4, 'three failures and one success, nothing else');
  t.same(new Set(r.hits.map((h) => h.headers['webhook-id'])).size, 1, 'one webhook-id across retries');
  t.ok(r.hits.every(signatureOk), 'every attempt carries a valid signature');
  const gaps = r.hits.slice(1).map((h, i) => h.at - r.hits[i].at);
  gaps.forEach((gap, i) => {
    const want = SCHEDULE[i];
    t.ok(gap >= want * 0.9 - 5 && gap <= want * 1.1 + 80, `retry ${i + 1} after ${gap} ms (schedule ${want} ms ± 10 %)`);
  });
  const ce = JSON.parse(r.hits[3].body) as Record<string, unknown>;
  t.match(ce, {
    specversion: '1.0',
    type: 'alert.raised',
    source: '/outpost/test/alerts',
    subject: 'door-1',
    datacontenttype: 'application/json',
    data: { severity: 'high' },
  });
  t.match(String(ce.time), /^\d{4}-\d\d-\d\dT/);
  t.equal(r.hits[0].headers['content-type'], 'application/cloudevents+json');
  const m = await metrics(g);
  t.equal(metricValue(m, 'outpost_webhook_deliveries_total', { endpoint: 'ops', result: 'delivered' }), 1);
  t.equal(metricValue(m, 'outpost_webhook_deliveries_total', { endpoint: 'ops', result: 'failed_attempt' }), 3);
  t.equal(metricValue(m, 'outpost_webhook_pending', { endpoint: 'ops' }), 0);
  const status = await api<{ webhooks: Record<string, { lastError: string; pending: number }> }>(g.httpUrl, '/api/v1/status', g.adminToken);
  t.match(status.body.webhooks.ops, { lastError: 'HTTP 503', pending: 0 });
});

t.test('always failing: dead after 5 retries, in the DLQ; retry delivers it once; drop removes', async (t) => {
  let ok = false;
  const { r, g } = await setup(t, () => (ok ? 200 : 500));
  await g.gw.emitEvent('access.denied', 'access', { door: 'd1' }, 'd1');
  await waitFor(
    async () => {
      const dlq = await api<{ deliveries: { id: string }[] }>(g.httpUrl, '/api/v1/webhooks/dlq', g.adminToken);
      return dlq.body.deliveries.length === 1 ? true : undefined;
    },
    'dead delivery',
    6000,
  );
  t.equal(r.hits.length, 6, 'the first attempt and 5 retries');
  const dlq = await api<{ deliveries: { id: string; attempts: number; state: string; lastError: string; endpoint: string }[] }>(
    g.httpUrl,
    '/api/v1/webhooks/dlq',
    g.adminToken,
  );
  const dead = dlq.body.deliveries[0];
  t.match(dead, { attempts: 6, state: 'dead', lastError: 'HTTP 500', endpoint: 'ops' });
  t.equal(dead.id, r.hits[0].headers['webhook-id']);
  t.equal(metricValue(await metrics(g), 'outpost_webhook_deliveries_total', { endpoint: 'ops', result: 'dead' }), 1);
  const viewer = await api(g.httpUrl, '/api/v1/webhooks/dlq/nope/retry', undefined, { method: 'POST' });
  t.equal(viewer.status, 401, 'the DLQ needs a token');
  t.equal((await api(g.httpUrl, '/api/v1/webhooks/dlq/nope/retry', g.adminToken, { method: 'POST' })).status, 404);

  ok = true;
  const retried = await api(g.httpUrl, `/api/v1/webhooks/dlq/${dead.id}/retry`, g.adminToken, { method: 'POST' });
  t.equal(retried.status, 200);
  await waitFor(() => (r.hits.some((h) => h.status === 200) ? true : undefined), 'retried delivery');
  await new Promise((res) => setTimeout(res, 200));
  t.equal(r.hits.filter((h) => h.status === 200).length, 1, 'delivered once');
  t.equal(r.hits.at(-1)!.headers['webhook-id'], dead.id, 'with the same webhook-id');
  t.same((await api<{ deliveries: unknown[] }>(g.httpUrl, '/api/v1/webhooks/dlq', g.adminToken)).body.deliveries, []);

  // drop: make another dead one, then delete it.
  ok = false;
  await g.gw.emitEvent('access.denied', 'access', { door: 'd2' }, 'd2');
  const second = await waitFor(
    async () => {
      const l = await api<{ deliveries: { id: string }[] }>(g.httpUrl, '/api/v1/webhooks/dlq', g.adminToken);
      return l.body.deliveries[0];
    },
    'second dead delivery',
    6000,
  );
  t.equal((await api(g.httpUrl, `/api/v1/webhooks/dlq/${second.id}`, g.adminToken, { method: 'DELETE' })).status, 200);
  t.equal((await api(g.httpUrl, `/api/v1/webhooks/dlq/${second.id}`, g.adminToken, { method: 'DELETE' })).status, 404);
});

t.test('410 Gone disables the endpoint: no more attempts, deliveries stay pending', async (t) => {
  const { r, g } = await setup(t, () => 410);
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 1 }, 'a');
  await waitFor(() => (r.hits.length === 1 ? true : undefined), 'first attempt');
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 2 }, 'b');
  await new Promise((res) => setTimeout(res, 400));
  t.equal(r.hits.length, 1, 'nothing sent after the 410');
  const m = await metrics(g);
  t.equal(metricValue(m, 'outpost_webhook_deliveries_total', { endpoint: 'ops', result: 'disabled' }), 1);
  t.equal(metricValue(m, 'outpost_webhook_pending', { endpoint: 'ops' }), 2);
  const s = await api<{ webhooks: Record<string, { disabled: boolean; lastError: string }> }>(g.httpUrl, '/api/v1/status', g.adminToken);
  t.match(s.body.webhooks.ops, { disabled: true, lastError: /410/ });
});

t.test('a restart in the middle of the retry schedule: delivered after it, exactly once', async (t) => {
  let ok = false;
  const r = await receiver(() => (ok ? 200 : 502));
  const dir = tempDir();
  const conf = site(r.url, { retryScheduleMs: [800, 800, 800, 800, 800] });
  t.teardown(async () => {
    await r.close();
    removeDir(dir);
  });
  let g = await startGateway(conf, dir);
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 1 }, 'door-9');
  await waitFor(() => (r.hits.length === 1 ? true : undefined), 'first attempt');
  await g.stop(); // the retry is 800 ms away
  ok = true;
  g = await startGateway(conf, dir);
  t.teardown(() => g.stop());
  await waitFor(() => (r.hits.some((h) => h.status === 200) ? true : undefined), 'delivery after restart', 5000);
  await new Promise((res) => setTimeout(res, 1000));
  const byId = new Map<string, number>();
  for (const h of r.hits.filter((x) => x.status === 200))
    byId.set(String(h.headers['webhook-id']), (byId.get(String(h.headers['webhook-id'])) ?? 0) + 1);
  t.same([...byId.values()], [1], 'one successful delivery per webhook-id');
  t.equal(r.hits.length, 2, 'the failed attempt before the restart and the one after');
  t.equal(r.hits[1].headers['webhook-id'], r.hits[0].headers['webhook-id']);
  t.ok(r.hits[1].at - r.hits[0].at >= 800 * 0.9 - 5, 'the reloaded row kept its next attempt time');
});

t.test('ordering per subject: a later delivery waits for the earlier one of the same subject', async (t) => {
  const failedOnce = new Set<string>();
  const { r, g } = await setup(t, (h) => {
    const ce = JSON.parse(h.body) as { data: { n: number } };
    if (ce.data.n === 1 && !failedOnce.has('1')) {
      failedOnce.add('1');
      return 500;
    }
    return 200;
  });
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 1 }, 's');
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 2 }, 's');
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 3 }, 't');
  await waitFor(() => (r.hits.filter((h) => h.status === 200).length === 3 ? true : undefined), 'three deliveries');
  const seq = r.hits.map((h) => `${(JSON.parse(h.body) as { data: { n: number } }).data.n}:${h.status}`);
  t.ok(seq.indexOf('1:200') < seq.indexOf('2:200'), `subject s in order (${seq.join(' ')})`);
  t.equal(seq.filter((s) => s.startsWith('2:')).length, 1, 'the later delivery was not tried before the earlier one succeeded');
  t.ok(seq.indexOf('3:200') < seq.indexOf('1:200'), 'another subject did not wait');
});

t.test('a rule webhook action naming an endpoint enqueues a durable delivery', async (t) => {
  const { r, g } = await setup(t, () => 200, {
    rules: [{ id: 'forced', when: { event: { type: 'door.forced' } }, then: [{ webhook: { endpoint: 'ops', body: { why: 'forced' } } }] }],
  });
  await g.gw.emitEvent('door.forced', 'test', { door: 'd1' }, 'd1');
  await waitFor(() => (r.hits.length === 1 ? true : undefined), 'rule delivery', 5000);
  const ce = JSON.parse(r.hits[0].body) as Record<string, unknown>;
  t.match(ce, { type: 'rule.webhook', source: '/outpost/test/rules', data: { why: 'forced' } });
  t.ok(signatureOk(r.hits[0]));
});

t.test('config checks: unique ids, one secret source, known endpoints in rules', async (t) => {
  const yaml = (webhooks: unknown, rules: unknown[] = []) => JSON.stringify({ site: 's', webhooks, rules });
  const ep = { id: 'a', url: 'http://127.0.0.1:1/x', secretEnv: 'X' };
  t.throws(() => parseConfig(yaml({ endpoints: [ep, ep] }), 'x.yaml'), /used twice/);
  t.throws(() => parseConfig(yaml({ endpoints: [{ ...ep, secretFile: 'f' }] }), 'x.yaml'), /exactly one of secretEnv and secretFile/);
  t.throws(
    () =>
      parseConfig(
        yaml({ endpoints: [ep] }, [{ id: 'r', when: { event: { type: 'x' } }, then: [{ webhook: { endpoint: 'b' } }] }]),
        'x.yaml',
      ),
    /unknown webhook endpoint "b"/,
  );
  const cfg = parseConfig(yaml({ endpoints: [ep] }), 'x.yaml');
  t.match(cfg.webhooks, { retryScheduleMs: [1000, 5000, 25000, 125000, 625000], maxPendingPerEndpoint: 100000 });
  t.match(cfg.webhooks.endpoints[0], { timeoutMs: 10000, concurrency: 4, types: [] });
});

t.test(
  'events committed while no delivery was recorded for them (a crash in between, the final flush) are caught up at start',
  async (t) => {
    const r = await receiver(() => 204);
    const dir = tempDir();
    t.teardown(async () => {
      await r.close();
      removeDir(dir);
    });
    // First start with the endpoint: the events mark starts here (history is not sent).
    await (await startGateway(site(r.url), dir)).stop();
    // Events committed by a gateway that records no deliveries for them, as after a crash
    // between an event's commit and its delivery row.
    const bare = await startGateway({}, dir);
    await bare.gw.emitEvent('alert.raised', 'alerts', { n: 1 }, 'a');
    await bare.gw.emitEvent('alert.raised', 'alerts', { n: 2 }, 'a');
    await bare.stop();
    const g = await startGateway(site(r.url), dir);
    t.teardown(() => g.stop());
    await waitFor(() => (r.hits.length >= 2 ? true : undefined), 'the two events delivered after the restart');
    t.same(
      r.hits.map((h) => (JSON.parse(h.body) as { data: { n: number } }).data.n),
      [1, 2],
      'in order',
    );
    await g.gw.emitEvent('alert.raised', 'alerts', { n: 3 }, 'a');
    await waitFor(() => (r.hits.length >= 3 ? true : undefined), 'a live event still delivered');
    await new Promise((res) => setTimeout(res, 300));
    t.equal(r.hits.length, 3, 'each once');
  },
);

t.test('outpost events replay re-delivers stored events in order, even delivered ones', async (t) => {
  const { r, g } = await setup(t, () => 204);
  const from = new Date(Date.now() - 1000).toISOString();
  await g.gw.emitEvent('alert.raised', 'alerts', { n: 1 }, 'x');
  // One subject: deliveries are ordered per subject (others may overtake each other).
  await g.gw.emitEvent('access.granted', 'access', { n: 2 }, 'x');
  await g.gw.emitEvent('device.online', 'mqtt', { n: 3 }, 'x'); // not subscribed: replay sends it anyway
  await waitFor(() => (r.hits.length >= 2 ? true : undefined), 'the live deliveries');
  const out = await outpost(['events', 'replay', '--since', from, '--to', 'ops', '--url', g.httpUrl, '--token', g.adminToken]);
  t.match(out.stdout, /3 events queued for delivery to ops/, out.stderr);
  await waitFor(() => (r.hits.length >= 5 ? true : undefined), 'the replayed deliveries');
  const ns = r.hits.map((h) => (JSON.parse(h.body) as { data: { n: number } }).data.n);
  t.same(ns, [1, 2, 1, 2, 3], 'live, then the replay in order');
  const typed = await outpost([
    'events',
    'replay',
    '--since',
    from,
    '--type',
    'access.*',
    '--to',
    'ops',
    '--url',
    g.httpUrl,
    '--token',
    g.adminToken,
  ]);
  t.match(typed.stdout, /1 events queued/);
  const unknown = await outpost(['events', 'replay', '--since', from, '--to', 'nope', '--url', g.httpUrl, '--token', g.adminToken]);
  t.not(unknown.code, 0, 'an unknown endpoint is refused');
});

t.test('one id follows a rule firing: rule.fired, the alert and the webhook share it (CloudEvents outpostcorrelationid)', async (t) => {
  const { r, g } = await setup(t, () => 204, {
    rules: [
      {
        id: 'hot',
        when: { reading: { device: 'sensor-1', point: 'temp' } },
        if: { value: { op: '>', value: 30 } },
        then: [{ alert: { severity: 'high', message: 'hot' } }, { webhook: { endpoint: 'ops' } }],
      },
    ],
  });
  // Rules see readings on the bus, as a driver's ingest hands them over.
  g.gw.bus.emit('readings', [{ ts: Date.now(), device: 'sensor-1', point: 'temp', value: 35 }]);
  await waitFor(() => (r.hits.length >= 2 ? true : undefined), 'the alert event and the rule webhook delivered', 8000);
  const bodies = r.hits.map((h) => JSON.parse(h.body) as { type: string; outpostcorrelationid?: string });
  const ids = new Set(bodies.map((b) => b.outpostcorrelationid));
  t.equal(ids.size, 1, `one correlation id across ${bodies.map((b) => b.type).join(', ')}`);
  t.match([...ids][0], /^[0-9a-f-]{36}$/);
  const fired = await api<{ events: { type: string; data: { correlationId?: string } }[] }>(
    g.httpUrl,
    '/api/v1/events?type=rule.fired',
    g.adminToken,
  );
  t.equal(fired.body.events[0]?.data.correlationId, [...ids][0], 'rule.fired carries it too');
});
