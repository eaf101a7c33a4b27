// HTTP push ingest end to end: curl and fetch post every payload form to the real local
// API; each refusal gets its status, is counted, and stores nothing; a 200 means committed,
// also across kill -9.
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { stringify } from 'yaml';
import { hashPassword, sha256Hex } from '../gateway/kernel/secrets.js';
import { api, freePort, metricValue, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';
import { exited, spawnCli } from './helpers/sync-child.js';
import { outpost } from './helpers/cli.js';

const run = promisify(execFile);
const TOKEN = 'meter-one-token-0123456789';
process.env.OUTPOST_TEST_HMAC = 'shared-secret-for-meter-3';

async function site(dir: string) {
  return {
    dataDir: dir,
    drivers: { http: { enabled: true, maxBodyBytes: 2048, requestsPerMinute: 50 } },
    devices: [
      { id: 'meter-1', zone: 'z', http: { auth: { bearer: { sha256: sha256Hex(TOKEN) } } } },
      { id: 'meter-2', zone: 'z', http: { auth: { basic: { username: 'm2', passwordHash: await hashPassword('pw-two') } } } },
      { id: 'meter-3', zone: 'z', http: { auth: { hmac: { secretEnv: 'OUTPOST_TEST_HMAC' } } } },
      {
        id: 'inverter',
        zone: 'z',
        http: {
          auth: { bearer: { sha256: sha256Hex('inv-token') } },
          mapping: {
            each: 'data.samples',
            ts: { path: 'time', format: 'iso' },
            points: { power: { path: 'ac.w', scale: 0.001, unit: 'kW' }, state: { path: 'status' } },
          },
        },
      },
    ],
  };
}

const post = (g: TestGateway, device: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${g.httpUrl}/ingest/v1/${device}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });
const count = async (g: TestGateway, device: string) =>
  (
    await api<{ rows: number[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, {
      method: 'POST',
      body: { sql: `SELECT count(*)::INTEGER FROM readings WHERE device = '${device}'` },
    })
  ).body.rows[0][0];
const metrics = async (g: TestGateway) => (await api<string>(g.httpUrl, '/metrics')).body;

t.test('every payload form and every auth form; 200 only with the readings stored', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const g = await startGateway(await site(dir), dir);
  t.teardown(() => g.stop());

  const c = await run('curl', [
    '-s',
    '-w',
    '\\n%{http_code}',
    '-H',
    `Authorization: Bearer ${TOKEN}`,
    '-H',
    'content-type: application/json',
    '--data',
    '{"temp": 21.5, "hum": 40}',
    `${g.httpUrl}/ingest/v1/meter-1`,
  ]);
  const [body, code] = c.stdout.split('\n');
  t.equal(code, '200', 'curl: 200');
  t.same(JSON.parse(body), { stored: 2 });
  t.equal(await count(g, 'meter-1'), 2, 'and the two readings are in DuckDB when it answers');

  const senml = JSON.stringify([
    { bn: 'meter-1:', n: 'v', u: 'V', v: 230.1 },
    { n: 'i', u: 'A', v: 1.2 },
  ]);
  t.equal((await post(g, 'meter-1', senml, bearer(TOKEN))).status, 200, 'SenML');
  t.equal(
    (await post(g, 'meter-1', JSON.stringify([{ temp: 1, ts: Date.now() - 1000 }, { temp: 2 }]), bearer(TOKEN))).status,
    200,
    'an array of objects',
  );
  t.equal(await count(g, 'meter-1'), 6);

  const basic = { authorization: `Basic ${Buffer.from('m2:pw-two').toString('base64')}` };
  t.equal((await post(g, 'meter-2', '{"flow": 3}', basic)).status, 200, 'basic auth');
  const ts = Math.floor(Date.now() / 1000);
  const b3 = '{"co2": 612}';
  const sig = createHmac('sha256', process.env.OUTPOST_TEST_HMAC!).update(`${ts}.${b3}`).digest('hex');
  t.equal(
    (await post(g, 'meter-3', b3, { 'x-outpost-timestamp': String(ts), 'x-outpost-signature': `sha256=${sig}` })).status,
    200,
    'HMAC signature',
  );

  const inv = JSON.stringify({
    data: {
      samples: [
        { time: '2026-12-01T10:00:00Z', ac: { w: 1500 }, status: 'ok' },
        { time: '2026-12-01T10:01:00Z', ac: { w: 1750 } },
      ],
    },
  });
  const r = await post(g, 'inverter', inv, bearer('inv-token'));
  t.same(await r.json(), { stored: 3 }, 'mapped: two power samples and one state');
  const rows = (
    await api<{ rows: unknown[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, {
      method: 'POST',
      body: {
        sql: "SELECT point, value, unit, epoch_ms(ts)::DOUBLE FROM readings WHERE device = 'inverter' AND point = 'power' ORDER BY ts",
      },
    })
  ).body.rows;
  t.same(
    rows,
    [
      ['power', 1.5, 'kW', Date.parse('2026-12-01T10:00:00Z')],
      ['power', 1.75, 'kW', Date.parse('2026-12-01T10:01:00Z')],
    ],
    'scaled, with unit and the device timestamp',
  );
});

t.test('refusals: status, counted by reason, nothing stored', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const cfg = await site(dir);
  cfg.drivers.http.requestsPerMinute = 3;
  const g = await startGateway(cfg, dir);
  t.teardown(() => g.stop());

  t.equal((await post(g, 'meter-1', '{"temp": 1}', bearer('wrong'))).status, 401, 'wrong token');
  t.equal((await post(g, 'meter-2', '{"temp": 1}', bearer(TOKEN))).status, 401, "meter-1's token cannot write meter-2's points");
  t.equal((await post(g, 'nobody', '{"temp": 1}', bearer(TOKEN))).status, 401, 'an unknown device looks the same');
  const stale = Math.floor(Date.now() / 1000) - 3600;
  const sig = createHmac('sha256', process.env.OUTPOST_TEST_HMAC!).update(`${stale}.{}`).digest('hex');
  t.equal(
    (await post(g, 'meter-3', '{}', { 'x-outpost-timestamp': String(stale), 'x-outpost-signature': `sha256=${sig}` })).status,
    401,
    'a stale signature',
  );
  t.equal((await post(g, 'meter-1', JSON.stringify({ blob: 'x'.repeat(4000) }), bearer(TOKEN))).status, 413, 'body over maxBodyBytes');
  const bad = await post(g, 'meter-1', '{"temp": ', bearer(TOKEN));
  t.same([bad.status, ((await bad.json()) as { reason: string }).reason], [422, 'invalid_json'], 'malformed JSON');
  const third = await post(g, 'meter-1', '[{"temp": 1}, {"temp": {"nested": true}}]', bearer(TOKEN));
  const tb = (await third.json()) as { error: string };
  t.equal(third.status, 422, 'a batch with a bad item is refused whole');
  t.match(tb.error, /\[1\]/, 'naming the item');
  const limited = await post(g, 'meter-1', '{"temp": 1}', bearer(TOKEN));
  t.equal(limited.status, 429, 'the fourth request in a minute');
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'with Retry-After');
  t.equal(await count(g, 'meter-1'), 0, 'nothing stored');
  const m = await metrics(g);
  t.equal(metricValue(m, 'outpost_auth_failures_total', { surface: 'http', reason: 'bad_token' }), 1);
  t.equal(
    metricValue(m, 'outpost_auth_failures_total', { surface: 'http', reason: 'no_credentials' }),
    1,
    'a bearer token for a basic-auth device',
  );
  t.equal(metricValue(m, 'outpost_auth_failures_total', { surface: 'http', reason: 'unknown_device' }), 1);
  t.equal(metricValue(m, 'outpost_auth_failures_total', { surface: 'http', reason: 'stale_signature' }), 1);
  t.equal(metricValue(m, 'outpost_rejects_total', { driver: 'http', reason: 'payload_too_large' }), 1);
  t.equal(metricValue(m, 'outpost_rejects_total', { driver: 'http', reason: 'invalid_json' }), 1);
  t.equal(metricValue(m, 'outpost_rate_limited_total', { surface: 'http', kind: 'device_requests' }), 1);
});

t.test('kill -9 right after a 200: every acknowledged reading is stored', async (t) => {
  const dir = tempDir('outpost-http-crash-');
  t.teardown(() => removeDir(dir));
  const port = await freePort();
  const cfg = {
    ...(await site(join(dir, 'data'))),
    site: 'h',
    http: { host: '127.0.0.1', port },
    drivers: { mqtt: { enabled: false }, http: { enabled: true } },
  };
  const file = join(dir, 'site.yaml');
  writeFileSync(file, stringify(cfg), { mode: 0o600 });
  const url = `http://127.0.0.1:${port}`;
  const acked: number[] = [];
  let n = 0;
  for (let round = 0; round < 2; round++) {
    const child = spawnCli(['run', '--config', file]);
    await waitFor(
      async () => ((await api(url, '/health').catch(() => ({ status: 0 }))).status === 200 ? true : undefined),
      'health',
      15_000,
    );
    const target = 20 + Math.floor(Math.random() * 60);
    let got = 0;
    while (got < target && n < 10_000) {
      const i = n++;
      const res = await fetch(`${url}/ingest/v1/meter-1`, { method: 'POST', headers: bearer(TOKEN), body: JSON.stringify({ n: i }) }).catch(
        () => null,
      );
      if (res?.status === 200) {
        acked.push(i);
        got++;
      }
    }
    child.proc.kill('SIGKILL');
    await exited(child.proc);
  }
  const child = spawnCli(['run', '--config', file]);
  t.teardown(() => void child.proc.kill('SIGKILL'));
  await waitFor(async () => ((await api(url, '/health').catch(() => ({ status: 0 }))).status === 200 ? true : undefined), 'health', 15_000);
  const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
  const rows = (
    await api<{ rows: number[][] }>(url, '/api/v1/query', token, {
      method: 'POST',
      body: { sql: "SELECT value::INTEGER, count(*)::INTEGER FROM readings WHERE device = 'meter-1' GROUP BY 1" },
    })
  ).body.rows;
  const stored = new Map(rows.map(([v, c]) => [v, c]));
  t.ok(acked.length > 0, `${acked.length} acknowledged`);
  t.same(
    acked.filter((i) => !stored.has(i)),
    [],
    'all acknowledged readings survived kill -9',
  );
  t.same(
    [...stored].filter(([, c]) => c > 1),
    [],
    'none stored twice',
  );
  child.proc.kill('SIGTERM');
  t.equal(await exited(child.proc), 0);
});

t.test('outpost map test prints what a payload would become; bad input says why', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, stringify({ site: 's', ...(await site(join(dir, 'data'))) }), { mode: 0o600 });
  const payload = join(dir, 'inv.json');
  writeFileSync(payload, JSON.stringify({ data: { samples: [{ time: '2026-12-01T10:00:00Z', ac: { w: 1500 }, status: 'ok' }] } }));
  const r = await outpost(['map', 'test', '--config', file, '--device', 'inverter', '--payload', payload]);
  t.equal(r.code, 0, r.stderr);
  t.same(r.stdout.trim().split('\n'), [
    '2026-12-01T10:00:00.000Z inverter power = 1.5 kW',
    '2026-12-01T10:00:00.000Z inverter state = "ok"',
  ]);
  writeFileSync(payload, JSON.stringify({ data: { samples: [{ time: 'yesterday', ac: { w: 1 } }] } }));
  const bad = await outpost(['map', 'test', '--config', file, '--device', 'inverter', '--payload', payload]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /refused \(bad_timestamp\): data\.samples\[0\]\.time: "yesterday" is not a iso timestamp/);
  const plain = join(dir, 'plain.json');
  writeFileSync(plain, '{"temp": 20}');
  t.match((await outpost(['map', 'test', '--config', file, '--device', 'meter-1', '--payload', plain])).stdout, /meter-1 temp = 20/);
});
