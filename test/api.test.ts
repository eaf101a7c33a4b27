// Local API: bearer-token roles, open health/metrics, the generated admin token, queries.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { api, connect, endClient, publish, removeDir, startGateway, tempDir } from './helpers/gateway.js';

t.test('API auth per role', async (t) => {
  const tokens = { admin: newApiToken(), operator: newApiToken(), viewer: newApiToken() };
  const g = await startGateway({
    http: { tokens: Object.entries(tokens).map(([role, tok]) => ({ name: `${role}-token`, role, sha256: sha256Hex(tok) })) },
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const c = await connect(g.mqttPort);
  await publish(c, 'devices/test/roof/wx/telemetry', JSON.stringify({ wind: 4.5 }));
  await endClient(c);

  const cases: [string, string, unknown, Record<'none' | 'bad' | 'viewer' | 'operator' | 'admin', number>][] = [
    ['GET', '/health', undefined, { none: 200, bad: 200, viewer: 200, operator: 200, admin: 200 }],
    ['GET', '/metrics', undefined, { none: 200, bad: 200, viewer: 200, operator: 200, admin: 200 }],
    ['GET', '/api/v1/readings', undefined, { none: 401, bad: 401, viewer: 200, operator: 200, admin: 200 }],
    ['GET', '/api/v1/devices', undefined, { none: 401, bad: 401, viewer: 200, operator: 200, admin: 200 }],
    ['GET', '/api/v1/events', undefined, { none: 401, bad: 401, viewer: 200, operator: 200, admin: 200 }],
    ['GET', '/api/v1/status', undefined, { none: 401, bad: 401, viewer: 200, operator: 200, admin: 200 }],
    // mqtt driver owns no configured device "wx", so a permitted command answers 409.
    ['POST', '/api/v1/devices/wx/commands', { action: 'ping' }, { none: 401, bad: 401, viewer: 403, operator: 409, admin: 409 }],
    ['POST', '/api/v1/query', { sql: 'SELECT 1' }, { none: 401, bad: 401, viewer: 403, operator: 403, admin: 200 }],
  ];
  for (const [method, path, body, expected] of cases) {
    for (const who of ['none', 'bad', 'viewer', 'operator', 'admin'] as const) {
      const token = who === 'none' ? undefined : who === 'bad' ? 'opt_wrong' : tokens[who];
      const res = await api(g.httpUrl, path, token, { method, body });
      t.equal(res.status, expected[who], `${method} ${path} as ${who}`);
    }
  }
  const noFile = await api(g.httpUrl, '/health');
  t.same(noFile.body, { status: 'ok', site: 'test' });
  t.throws(() => statSync(join(g.dir, 'admin.token')), 'no admin token generated when tokens are configured');

  const readings = await api<{ readings: { device: string; value: number }[] }>(
    g.httpUrl,
    '/api/v1/readings?device=wx&from=-1h',
    tokens.viewer,
  );
  t.same(
    readings.body.readings.map((r) => [r.device, r.value]),
    [['wx', 4.5]],
  );
  const bucketed = await api<{ buckets: { count: number; avg: number }[] }>(
    g.httpUrl,
    '/api/v1/readings?device=wx&bucket=1m',
    tokens.viewer,
  );
  t.same(
    bucketed.body.buckets.map((b) => [b.count, b.avg]),
    [[1, 4.5]],
  );
  const badBucket = await api<{ error: string }>(g.httpUrl, '/api/v1/readings?bucket=fortnight', tokens.viewer);
  t.equal(badBucket.status, 400);
  t.match(badBucket.body.error, /bucket "fortnight"/);
  const badParam = await api<{ error: string }>(g.httpUrl, '/api/v1/readings?devise=wx', tokens.viewer);
  t.equal(badParam.status, 400, 'unknown query parameters are refused');
  const refused = await api<{ error: string }>(g.httpUrl, '/api/v1/query', tokens.admin, {
    method: 'POST',
    body: { sql: 'DELETE FROM readings' },
  });
  t.equal(refused.status, 400);
  t.match(refused.body.error, /read-only/);
});

t.test('first start without tokens writes an admin token file (0600) and never logs the token', async (t) => {
  const dir = tempDir();
  const lines: string[] = [];
  const g = await startGateway({}, dir, { logLines: lines });
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const st = statSync(join(dir, 'admin.token'));
  t.equal(st.mode & 0o777, 0o600);
  t.match(g.adminToken, /^opt_[A-Za-z0-9_-]{43}$/);
  t.equal(g.gw.tokens.adminTokenFile, join(dir, 'admin.token'));
  t.equal((await api(g.httpUrl, '/api/v1/status', g.adminToken)).status, 200);
  t.ok(
    lines.some((l) => l.includes('created an admin token') && l.includes(join(dir, 'admin.token'))),
    'the path is logged',
  );
  t.notOk(
    lines.some((l) => l.includes(g.adminToken)),
    'the token is not',
  );
});
