// The uploader against the real cloud API on loopback: outages, faults, priorities, quota.
import t, { type Test } from 'tap';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SyncStatus } from '../sync/uploader.js';
import { applyRetention, usedBytes } from '../gateway/store/retention.js';
import { startCloud, type TestCloud } from './helpers/cloud.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { api, freePort, metricValue, removeDir, tempDir, waitFor } from './helpers/gateway.js';
import { cloudEvents, cloudReadings, reading, syncedGateway } from './helpers/sync.js';

const seqs = (rows: { seq: number }[]) => rows.map((r) => r.seq).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function cloud(t: Test, port = 0, dir?: string): Promise<TestCloud> {
  const c = await startCloud({ http: { port } }, dir);
  t.teardown(async () => {
    await c.stop().catch(() => undefined);
    if (!dir) removeDir(c.dir);
  });
  return c;
}

t.test('cloud down, then up: every reading and event arrives once, in order, and the status agrees', async (t) => {
  const port = await freePort();
  let c = await cloud(t, port);
  const cloudDir = c.dir;
  const g = await syncedGateway(c, { sync: { batchRows: 700 } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  await c.stop(); // the uplink goes away
  await g.gw.writer.write(range(0, 2999).map((i) => reading(i)));
  await g.gw.emitEvent('device.offline', 'test', { device: 'dev-1' }, 'dev-1');
  await g.gw.alerts.raise({ key: 'k', severity: 'high', message: 'while offline' });
  const offline = await waitFor(async () => {
    const s = (await api<SyncStatus>(g.httpUrl, '/api/v1/sync', g.adminToken)).body;
    return s.consecutiveFailures >= 2 ? s : undefined;
  }, 'failures while the cloud is down');
  t.equal(offline.circuit === 'open' || offline.circuit === 'half-open', true, `circuit opened (${offline.circuit})`);
  t.equal(offline.streams.telemetry.backlogRows, 3000);
  t.match(offline.lastError, /ECONNREFUSED|connect/);

  c = await cloud(t, port, cloudDir); // same store, same port
  await waitFor(async () => ((await cloudReadings(c)).length === 3000 ? true : undefined), 'all readings at the cloud', 15000);
  const rows = await cloudReadings(c);
  t.same(seqs(rows), range(1, 3000), 'each seq exactly once');
  const bySeq = new Map(rows.map((r) => [r.seq, r]));
  t.same(
    bySeq.get(1234),
    { ...bySeq.get(1234), device: reading(1233).device, point: reading(1233).point, value: reading(1233).value },
    'values intact',
  );
  const events = await waitFor(async () => {
    const ev = await cloudEvents(c);
    return ev.length >= 2 ? ev : undefined;
  }, 'events at the cloud');
  t.same(events.map((e) => e.type).sort(), ['alert.triggered', 'device.offline']);

  // `outpost sync status` (the API behind it) and the cloud's gateway list agree.
  const local = await waitFor(async () => {
    const s = (await api<SyncStatus>(g.httpUrl, '/api/v1/sync', g.adminToken)).body;
    return s.streams.telemetry.backlogRows === 0 && s.circuit === 'closed' ? s : undefined;
  }, 'drained');
  const remote = await waitFor(async () => {
    const list = (await (await fetch(`${c.url}/api/v1/gateways`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json()) as {
      id: string;
      status: { streams: SyncStatus['streams'] } | null;
    }[];
    const gw = list.find((x) => x.id === 'gw-1');
    return gw?.status?.streams.telemetry.ackedSeq === 3000 ? gw : undefined;
  }, 'status reported upstream');
  for (const s of ['priority', 'events', 'telemetry'] as const) {
    t.same(
      {
        backlog: remote.status!.streams[s].backlogRows,
        acked: remote.status!.streams[s].ackedSeq,
        dropped: remote.status!.streams[s].dropped,
      },
      { backlog: local.streams[s].backlogRows, acked: local.streams[s].ackedSeq, dropped: local.streams[s].dropped },
      `${s}: same numbers on both sides`,
    );
  }
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(metrics, 'outpost_sync_rows_total', { stream: 'telemetry' }), 3000);
  t.equal(metricValue(metrics, 'outpost_sync_circuit_state'), 0);
});

t.test('500s, Retry-After, slow answers and resets: retried until accepted, nothing twice', async (t) => {
  const c = await cloud(t);
  const proxy = await startFaultProxy(c.url);
  t.teardown(() => proxy.close());
  proxy.inject([
    { kind: 'status', status: 500 },
    { kind: 'reset' },
    { kind: 'status', status: 503, retryAfter: '1' },
    { kind: 'slow', delayMs: 1500 }, // longer than headersMs below: times out, then retried
    { kind: 'status', status: 429, retryAfter: '1' },
  ]);
  const g = await syncedGateway(c, { via: proxy.url, sync: { batchRows: 500, timeouts: { headersMs: 1000 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  await g.gw.writer.write(range(0, 1999).map((i) => reading(i)));
  await waitFor(async () => ((await cloudReadings(c)).length === 2000 ? true : undefined), 'all readings through the faults', 20000);
  t.same(seqs(await cloudReadings(c)), range(1, 2000), 'no loss, no duplicates');
  const uploads = proxy.log.filter((r) => r.stream === 'telemetry');
  const after503 = uploads.findIndex((r) => r.status === 503);
  t.ok(uploads[after503 + 1].at - uploads[after503].at >= 950, 'Retry-After: 1 was honoured');
  t.same(
    uploads.slice(0, 5).map((r) => r.first),
    [1, 1, 1, 1, 1],
    'the same batch is offered again after each failure',
  );
  t.ok(
    uploads.some((r) => r.status === 200 && r.first === 1),
    'and finally accepted',
  );
});

t.test('an alert raised during a large telemetry backlog overtakes it within one batch', async (t) => {
  const c = await cloud(t);
  const proxy = await startFaultProxy(c.url);
  t.teardown(() => proxy.close());
  const g = await syncedGateway(c, { via: proxy.url, sync: { batchRows: 1000 } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  await g.gw.writer.write(range(0, 29_999).map((i) => reading(i)));
  await waitFor(() => (proxy.log.filter((r) => r.stream === 'telemetry').length >= 3 ? true : undefined), 'backlog draining');
  await g.gw.alerts.raise({ key: 'fire', severity: 'critical', message: 'fire alarm' });
  const raisedAt = proxy.log.length;
  await waitFor(() => (proxy.log.some((r) => r.stream === 'priority') ? true : undefined), 'alert uploaded');
  const between = proxy.log
    .slice(raisedAt)
    .filter((r, i, all) => r.stream === 'telemetry' && i < all.findIndex((x) => x.stream === 'priority'));
  t.ok(between.length <= 1, `at most the one batch in flight went first (${between.length})`);
  await waitFor(async () => ((await cloudReadings(c)).length === 30_000 ? true : undefined), 'the rest of the backlog', 20000);
});

t.test(
  'disk quota while offline: rows the cloud has go first, then the oldest unsent telemetry, counted exactly; alerts stay',
  async (t) => {
    const port = await freePort();
    let c = await cloud(t, port);
    const cloudDir = c.dir;
    const g = await syncedGateway(c, { sync: { batchRows: 5000 } });
    t.teardown(async () => {
      await g.stop();
      removeDir(g.dir);
    });
    await g.gw.writer.write(range(0, 9_999).map((i) => reading(i)));
    await waitFor(async () => ((await cloudReadings(c)).length === 10_000 ? true : undefined), 'first 10k synced', 15000);
    await waitFor(
      async () =>
        (await api<SyncStatus>(g.httpUrl, '/api/v1/sync', g.adminToken)).body.streams.telemetry.ackedSeq === 10_000 ? true : undefined,
      'acked locally',
    );
    await c.stop();
    await g.gw.writer.write(range(10_000, 39_999).map((i) => reading(i)));
    for (let i = 0; i < 5; i++) await g.gw.alerts.raise({ key: `a${i}`, severity: 'high', message: `alert ${i}` });
    const eventsBefore = (await api<{ events: unknown[] }>(g.httpUrl, '/api/v1/events?limit=1000', g.adminToken)).body.events.length;

    const quiet = g.gw.log.child({});
    quiet.level = 'silent';
    const used = await usedBytes(g.gw.db.instance, g.gw.dbPath);
    const r = await applyRetention(
      g.gw.db.instance,
      g.gw.dbPath,
      { maxAgeDays: 36500, maxDiskMB: (used * 0.5) / 1048576 },
      g.gw.metrics,
      quiet,
      Date.now(),
      { sync: true },
    );
    const dropped = r.unsentDropped.telemetry;
    t.ok(r.disk.readings > 10_000, `synced rows went first, then unsent ones (${r.disk.readings} deleted)`);
    t.equal(dropped, r.disk.readings - 10_000, 'exactly the unsent deletions are counted as dropped');
    t.equal(r.disk.events, 0, 'no event was deleted while readings remained');
    t.equal((await api<{ events: unknown[] }>(g.httpUrl, '/api/v1/events?limit=1000', g.adminToken)).body.events.length, eventsBefore);

    c = await cloud(t, port, cloudDir);
    const expected = range(1, 10_000).concat(range(10_001 + dropped, 40_000));
    await waitFor(async () => ((await cloudReadings(c)).length === expected.length ? true : undefined), 'the rest arrives', 20000);
    t.same(seqs(await cloudReadings(c)), expected, 'the oldest unsent rows are the ones missing');
    t.equal((await cloudEvents(c)).filter((e) => e.type === 'alert.triggered').length, 5, 'every alert arrives');
    const local = (await api<SyncStatus>(g.httpUrl, '/api/v1/sync', g.adminToken)).body;
    t.equal(local.streams.telemetry.dropped, dropped);
    const gw = await waitFor(async () => {
      const list = (await (await fetch(`${c.url}/api/v1/gateways`, { headers: { authorization: `Bearer ${c.adminToken}` } })).json()) as {
        id: string;
        dropped: number;
      }[];
      const x = list.find((y) => y.id === 'gw-1');
      return x && x.dropped === dropped ? x : undefined;
    }, 'dropped count reported upstream');
    t.equal(gw.dropped, dropped, 'the cloud knows exactly how much was dropped');
  },
);

t.test('batch files a crash left in <dataDir>/tmp are removed at start', async (t) => {
  const c = await cloud(t);
  const dir = tempDir();
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'tmp', 'batch-left-by-a-crash.parquet'), Buffer.alloc(1000));
  writeFileSync(join(dir, 'tmp', 'keep.txt'), 'not ours');
  const g = await syncedGateway(c, { dir });
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  t.same(readdirSync(join(dir, 'tmp')), ['keep.txt']);
});
