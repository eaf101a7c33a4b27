// Rate limits: failed API authentications per source address (429 + Retry-After, counted,
// logged once per window), per-token request budgets with X-RateLimit-* headers, and on
// MQTT a connection limit (CONNACK "server unavailable") and a per-client publish rate
// that slows a fast client down without losing its messages.
import t from 'tap';
import { Agent, request } from 'undici';
import { newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { connect, endClient, metricValue, publish, removeDir, startGateway, api, waitFor } from './helpers/gateway.js';
import { mqtt } from '../drivers/mqtt/index.js';

/** A request from another loopback address, so one test can be several "clients". */
async function from(
  source: string,
  url: string,
  token?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: { error?: string } }> {
  const dispatcher = new Agent({ localAddress: source });
  try {
    const res = await request(url, { dispatcher, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as { error?: string } };
  } finally {
    await dispatcher.close();
  }
}

t.test('failed authentications: an address is blocked after the limit; others are not', async (t) => {
  const good = newApiToken();
  const lines: string[] = [];
  const g = await startGateway(
    {
      http: { tokens: [{ name: 'ops', role: 'operator', sha256: sha256Hex(good) }], rateLimit: { authFailures: { max: 3, windowS: 60 } } },
    },
    undefined,
    { logLines: lines },
  );
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const url = `${g.httpUrl}/api/v1/status`;
  for (let i = 0; i < 3; i++) t.equal((await from('127.0.0.2', url, 'opt_guess' + i)).status, 401, `guess ${i + 1} is a plain 401`);
  const blocked = await from('127.0.0.2', url, 'opt_guess4');
  t.equal(blocked.status, 429, 'the next attempt from that address is refused');
  const retry = Number(blocked.headers['retry-after']);
  t.ok(retry >= 1 && retry <= 60, `Retry-After ${retry} s`);
  t.match(blocked.body.error, /too many failed authentications from 127\.0\.0\.2/);
  t.equal((await from('127.0.0.2', url, good)).status, 429, 'even a good token from the blocked address waits');
  t.equal((await from('127.0.0.3', url, good)).status, 200, 'another address is not affected');
  for (let i = 0; i < 5; i++) await from('127.0.0.2', url, 'opt_more');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(metrics, 'outpost_rate_limited_total', { surface: 'http', kind: 'auth_failures' }), 7, 'each refusal is counted');
  t.equal(metricValue(metrics, 'outpost_auth_failures_total', { surface: 'http', reason: 'bad_token' }), 3);
  t.equal(lines.filter((l) => l.includes('too many failed API authentications')).length, 1, 'logged once per window');
});

t.test('per-token budgets: X-RateLimit headers count down, then 429; a token may have its own', async (t) => {
  const a = newApiToken();
  const b = newApiToken();
  const g = await startGateway({
    http: {
      rateLimit: { requests: { max: 4, windowS: 3600 } },
      tokens: [
        { name: 'integration', role: 'viewer', sha256: sha256Hex(a) },
        { name: 'dashboard', role: 'viewer', sha256: sha256Hex(b), rateLimit: { max: 6, windowS: 60 } },
      ],
    },
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const url = `${g.httpUrl}/api/v1/devices`;
  const remaining: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await from('127.0.0.1', url, a);
    t.equal(r.status, 200);
    t.equal(r.headers['x-ratelimit-limit'], '4');
    remaining.push(String(r.headers['x-ratelimit-remaining']));
    const reset = Number(r.headers['x-ratelimit-reset']);
    t.ok(reset > 3500 && reset <= 3600, `X-RateLimit-Reset ${reset} s`);
  }
  t.same(remaining, ['3', '2', '1', '0']);
  const over = await from('127.0.0.1', url, a);
  t.equal(over.status, 429);
  t.equal(over.headers['x-ratelimit-remaining'], '0');
  t.ok(Number(over.headers['retry-after']) > 3500, 'Retry-After is the rest of the window');
  t.match(over.body.error, /token "integration" is over its limit of 4 requests/);
  const own = await from('127.0.0.1', url, b);
  t.equal(own.status, 200, 'the other token has its own budget');
  t.equal(own.headers['x-ratelimit-limit'], '6');
  t.ok(Number(own.headers['x-ratelimit-reset']) <= 60);
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(metrics, 'outpost_rate_limited_total', { surface: 'http', kind: 'requests' }), 1);
});

t.test('MQTT: connections past maxConnections are refused with "server unavailable"', async (t) => {
  const g = await startGateway({ drivers: { mqtt: { maxConnections: 3 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const clients = [await connect(g.mqttPort), await connect(g.mqttPort), await connect(g.mqttPort)];
  const refused = await connect(g.mqttPort).then(
    (c) => {
      void endClient(c);
      return null;
    },
    (err: Error & { code?: number }) => err,
  );
  t.ok(refused, 'the fourth connection is refused');
  t.equal(refused?.code, 3, 'CONNACK return code 3: server unavailable');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(metrics, 'outpost_mqtt_refused_connections_total', { reason: 'max_connections' }), 1);
  await endClient(clients.pop()!);
  await waitFor(async () => (g.gw.supervisor.instanceOf(mqtt)?.health().clients === 2 ? true : undefined), 'a connection to close');
  const again = await connect(g.mqttPort);
  t.ok(again.connected, 'after one leaves, a new client is accepted');
  for (const c of [...clients, again]) await endClient(c);
});

t.test('MQTT: a client over maxMessagesPerSecond is slowed down and loses nothing', async (t) => {
  const g = await startGateway({ drivers: { mqtt: { maxMessagesPerSecond: 20 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const c = await connect(g.mqttPort);
  const started = Date.now();
  await Promise.all(Array.from({ length: 50 }, (_, i) => publish(c, 'devices/test/lab/fast/telemetry', JSON.stringify({ n: i }), 1)));
  const elapsed = Date.now() - started;
  // 50 acknowledged messages with a budget of 20 at once and 20/s after: (50 - 20) / 20 = 1.5 s at least.
  t.ok(elapsed >= 1400, `the burst was spread out (${elapsed} ms)`);
  await Promise.all(Array.from({ length: 20 }, (_, i) => publish(c, 'devices/test/lab/fast/telemetry', JSON.stringify({ q0: i }), 0)));
  await waitFor(async () => {
    const r = await api<{ rows: number[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, {
      method: 'POST',
      body: { sql: "SELECT count(*)::INT FROM readings WHERE device = 'fast'" },
    });
    return r.body.rows[0][0] === 70 ? true : undefined;
  }, 'all 70 readings stored');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.ok(
    metricValue(metrics, 'outpost_rate_limited_total', { surface: 'mqtt', kind: 'throttled' }) >= 40,
    'the slowed publishes are counted',
  );
  await endClient(c);
});

t.test('MQTT: a client far over its rate is disconnected; what was acknowledged is stored', async (t) => {
  const g = await startGateway({ drivers: { mqtt: { maxMessagesPerSecond: 1 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const c = await connect(g.mqttPort);
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  const acked: number[] = [];
  // Three at the allowed pace (one waits its second), then a burst far over it.
  for (let i = 0; i < 3; i++) await publish(c, 'devices/test/lab/flood/telemetry', JSON.stringify({ n: i }), 1).then(() => acked.push(i));
  for (let i = 3; i < 20; i++)
    void publish(c, 'devices/test/lab/flood/telemetry', JSON.stringify({ n: i }), 1).then(
      () => acked.push(i),
      () => undefined,
    );
  await closed;
  c.end(true);
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(
    metricValue(metrics, 'outpost_rate_limited_total', { surface: 'mqtt', kind: 'disconnected' }) >= 1,
    true,
    'the disconnect is counted',
  );
  const r = await api<{ rows: number[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, {
    method: 'POST',
    body: { sql: "SELECT list(value::INT ORDER BY value) FROM readings WHERE device = 'flood'" },
  });
  const stored = (r.body.rows[0][0] as unknown as number[] | null) ?? [];
  t.ok(acked.length >= 3, `the paced messages were acknowledged (${acked.length})`);
  t.ok(
    acked.every((n) => stored.includes(n)),
    `every acknowledged message is stored (acked ${acked.length}, stored ${stored.length})`,
  );
  t.ok(stored.length < 20, 'the flood was cut off');
});
