// Alerts: de-duplication by key, the open → acknowledged → resolved lifecycle over the
// API (roles, 404/409), list filters, concurrent raises, and state across a restart —
// against a real gateway and its DuckDB file.
import t from 'tap';
import { AlertStore, type Alert } from '../gateway/alerts.js';
import { newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { applyRetention } from '../gateway/store/retention.js';
import { api, removeDir, startGateway, tempDir, type TestGateway } from './helpers/gateway.js';

const tokens = { admin: newApiToken(), operator: newApiToken(), viewer: newApiToken() };
const overrides = {
  http: { tokens: Object.entries(tokens).map(([role, tok]) => ({ name: `${role}-token`, role, sha256: sha256Hex(tok) })) },
};

async function alertEvents(g: TestGateway, type: string): Promise<{ subject: string; data: Alert }[]> {
  const res = await api<{ events: { subject: string; data: Alert }[] }>(g.httpUrl, `/api/v1/events?type=${type}`, tokens.admin);
  return res.body.events;
}

t.test('alert lifecycle, de-duplication and the API', async (t) => {
  const dir = tempDir();
  let g = await startGateway(overrides, dir);
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const post = (path: string, token: string, body?: unknown) =>
    api<Alert & { error?: string }>(g.httpUrl, path, token, { method: 'POST', body });

  const first = await g.gw.alerts.raise({ key: 'hot:room-1', rule: 'hot', severity: 'high', message: 'at 31 °C', data: { value: 31 } });
  t.ok(first.created);
  const again = await g.gw.alerts.raise({ key: 'hot:room-1', rule: 'hot', severity: 'critical', message: 'at 33 °C', data: { value: 33 } });
  t.notOk(again.created, 'same key while open: a repeat, not a new alert');
  t.equal(again.alert.id, first.alert.id);
  t.equal(again.alert.count, 2);
  t.equal(again.alert.message, 'at 33 °C', 'the latest message wins');
  t.equal(again.alert.severity, 'critical');
  t.same(again.alert.data, { value: 33 });
  t.ok(again.alert.lastAt >= first.alert.lastAt);
  const triggered = await alertEvents(g, 'alert.triggered');
  t.equal(triggered.length, 1, 'one alert.triggered event for two raises');
  t.equal(triggered[0].subject, first.alert.id);
  t.equal(triggered[0].data.key, 'hot:room-1');

  const other = await g.gw.alerts.raise({ key: 'door:lobby', severity: 'low', message: 'held open' });
  t.ok(other.created, 'a different key opens a second alert');
  t.equal(other.alert.rule, null);
  t.equal(other.alert.data, null);

  const id = first.alert.id;
  t.equal((await post(`/api/v1/alerts/${id}/acknowledge`, tokens.viewer)).status, 403, 'viewers may not acknowledge');
  t.equal((await api(g.httpUrl, `/api/v1/alerts/${id}/acknowledge`, undefined, { method: 'POST' })).status, 401);
  const acked = await post(`/api/v1/alerts/${id}/acknowledge`, tokens.operator, { note: 'on my way' });
  t.equal(acked.status, 200);
  t.equal(acked.body.status, 'acknowledged');
  t.equal(acked.body.acknowledgedBy, 'operator-token');
  t.equal(acked.body.note, 'on my way');
  t.ok(acked.body.acknowledgedAt);
  const ackAgain = await post(`/api/v1/alerts/${id}/acknowledge`, tokens.operator);
  t.equal(ackAgain.status, 409);
  t.match(ackAgain.body.error, /is acknowledged: only an open alert/);
  t.equal(
    (await post(`/api/v1/alerts/${id}/acknowledge`, tokens.operator, { colour: 'red' })).status,
    400,
    'unknown body keys are refused',
  );

  const repeat = await g.gw.alerts.raise({ key: 'hot:room-1', severity: 'high', message: 'at 32 °C' });
  t.equal(repeat.alert.id, id, 'an acknowledged alert still absorbs repeats');
  t.equal(repeat.alert.count, 3);
  t.equal(repeat.alert.status, 'acknowledged');
  t.same(repeat.alert.data, { value: 33 }, 'a repeat without data keeps the last data');

  const resolved = await post(`/api/v1/alerts/${id}/resolve`, tokens.admin);
  t.equal(resolved.status, 200);
  t.equal(resolved.body.status, 'resolved');
  t.equal(resolved.body.resolvedBy, 'admin-token');
  t.equal(resolved.body.note, 'on my way', 'no new note keeps the earlier one');
  t.equal((await post(`/api/v1/alerts/${id}/resolve`, tokens.operator)).status, 409, 'resolved is final');
  t.equal((await post(`/api/v1/alerts/${id}/acknowledge`, tokens.operator)).status, 409);
  // open → resolved directly is allowed too
  t.equal((await post(`/api/v1/alerts/${other.alert.id}/resolve`, tokens.operator, { note: 'closed' })).status, 200);

  const reopened = await g.gw.alerts.raise({ key: 'hot:room-1', severity: 'medium', message: 'at 31 °C again' });
  t.ok(reopened.created, 'after resolve the same key opens a NEW alert');
  t.not(reopened.alert.id, id);
  t.equal(reopened.alert.count, 1);

  const events = await api<{ events: { type: string; subject: string }[] }>(g.httpUrl, '/api/v1/events?type=alert.*', tokens.viewer);
  t.same(
    events.body.events.map((e) => e.type).reverse(),
    ['alert.triggered', 'alert.triggered', 'alert.acknowledged', 'alert.resolved', 'alert.resolved', 'alert.triggered'],
    'each change of state is one event, repeats are none',
  );

  type List = { alerts: Alert[] };
  const all = await api<List>(g.httpUrl, '/api/v1/alerts', tokens.viewer);
  t.equal(all.status, 200);
  t.same(
    all.body.alerts.map((a) => a.id),
    [reopened.alert.id, other.alert.id, id],
    'newest first',
  );
  const open = await api<List>(g.httpUrl, '/api/v1/alerts?status=open', tokens.viewer);
  t.same(
    open.body.alerts.map((a) => a.id),
    [reopened.alert.id],
  );
  const resolvedList = await api<List>(g.httpUrl, '/api/v1/alerts?status=resolved', tokens.viewer);
  t.same(
    resolvedList.body.alerts.map((a) => a.id),
    [other.alert.id, id],
  );
  const low = await api<List>(g.httpUrl, '/api/v1/alerts?severity=low', tokens.viewer);
  t.same(
    low.body.alerts.map((a) => a.id),
    [other.alert.id],
  );
  const both = await api<List>(g.httpUrl, '/api/v1/alerts?status=resolved&severity=high', tokens.viewer);
  t.same(
    both.body.alerts.map((a) => a.id),
    [id],
    'status and severity together (the last repeat set it back to high)',
  );
  const none = await api<List>(g.httpUrl, '/api/v1/alerts?status=open&severity=high', tokens.viewer);
  t.same(none.body.alerts, []);
  t.equal((await api<List>(g.httpUrl, '/api/v1/alerts?limit=1', tokens.viewer)).body.alerts.length, 1);
  t.equal((await api(g.httpUrl, '/api/v1/alerts?status=closed', tokens.viewer)).status, 400);
  t.equal((await api(g.httpUrl, '/api/v1/alerts?severity=urgent', tokens.viewer)).status, 400);

  const one = await api<Alert>(g.httpUrl, `/api/v1/alerts/${id}`, tokens.viewer);
  t.equal(one.status, 200);
  t.equal(one.body.severity, 'high');
  t.equal(one.body.count, 3);
  const missing = await api<{ error: string }>(g.httpUrl, '/api/v1/alerts/nope', tokens.viewer);
  t.equal(missing.status, 404);
  t.match(missing.body.error, /no alert "nope"/);
  t.equal((await post('/api/v1/alerts/nope/acknowledge', tokens.operator)).status, 404);
  t.equal((await post('/api/v1/alerts/nope/resolve', tokens.operator)).status, 404);
  await t.rejects(g.gw.alerts.raise({ key: '', severity: 'low', message: 'x' }), { name: 'AlertError', message: /non-empty/ });

  // Twenty raises at once with one key: one alert, counted twenty times, one event.
  const burst = await Promise.all(
    Array.from({ length: 20 }, (_, i) => g.gw.alerts.raise({ key: 'burst', severity: 'low', message: `#${i}` })),
  );
  t.equal(burst.filter((r) => r.created).length, 1);
  t.equal(new Set(burst.map((r) => r.alert.id)).size, 1);
  t.equal((await g.gw.alerts.get(burst[0].alert.id))!.count, 20);
  t.equal((await g.gw.alerts.list({ limit: 100 })).filter((a) => a.key === 'burst').length, 1);
  t.equal((await alertEvents(g, 'alert.triggered')).filter((e) => e.data.key === 'burst').length, 1);

  // Alert state is in the store: a new gateway on the same directory sees it all.
  const before = await g.gw.alerts.list({ limit: 100 });
  await g.stop();
  g = await startGateway(overrides, dir);
  t.same(await g.gw.alerts.list({ limit: 100 }), before, 'alerts survive a restart');
  const afterRestart = await g.gw.alerts.raise({ key: 'burst', severity: 'low', message: 'still going' });
  t.notOk(afterRestart.created, 'an alert opened before the restart still de-duplicates');
  t.equal(afterRestart.alert.count, 21);
  t.equal((await post(`/api/v1/alerts/${afterRestart.alert.id}/acknowledge`, tokens.operator)).status, 200);
});

t.test('the number of open and acknowledged alerts is bounded; resolved ones do not count', async (t) => {
  const g = await startGateway(overrides);
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const store = new AlertStore(g.gw.db.instance, async () => undefined, 2);
  const a = await store.raise({ key: 'a', severity: 'low', message: 'a' });
  await store.raise({ key: 'b', severity: 'low', message: 'b' });
  await t.rejects(store.raise({ key: 'c', severity: 'low', message: 'c' }), {
    name: 'AlertError',
    message: /too many active alerts \(2 open or acknowledged, limit 2\)/,
  });
  t.notOk((await store.raise({ key: 'a', severity: 'low', message: 'a' })).created, 'repeats of an active alert still count at the limit');
  await store.resolve(a.alert.id, 'test');
  t.ok((await store.raise({ key: 'c', severity: 'low', message: 'c' })).created, 'resolving makes room');
});

t.test('retention removes alerts resolved longer ago than maxAgeDays, never active ones', async (t) => {
  const g = await startGateway(overrides);
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const old = await g.gw.alerts.raise({ key: 'old', severity: 'low', message: 'old' });
  const open = await g.gw.alerts.raise({ key: 'open', severity: 'high', message: 'still open' });
  const acked = await g.gw.alerts.raise({ key: 'acked', severity: 'high', message: 'acknowledged' });
  await g.gw.alerts.resolve(old.alert.id, 'test');
  await g.gw.alerts.acknowledge(acked.alert.id, 'test');
  const quiet = g.gw.log.child({});
  quiet.level = 'silent';
  const limits = { maxAgeDays: 30, maxDiskMB: 1024 };
  const soon = await applyRetention(g.gw.db.instance, g.gw.dbPath, limits, g.gw.metrics, quiet, Date.now() + 29 * 86_400_000);
  t.equal(soon.age.alerts, 0, 'resolved 29 days ago: kept');
  const later = await applyRetention(g.gw.db.instance, g.gw.dbPath, limits, g.gw.metrics, quiet, Date.now() + 31 * 86_400_000);
  t.equal(later.age.alerts, 1);
  t.same((await g.gw.alerts.list({ limit: 100 })).map((a) => a.id).sort(), [open.alert.id, acked.alert.id].sort());
});
