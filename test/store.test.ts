// The DuckDB store: group commit, gap-free seq across reopen, bounds, retention, read-only SQL.
import { join } from 'node:path';
import t from 'tap';
import { createBus } from '../gateway/bus.js';
import { createLogger } from '../gateway/kernel/log.js';
import { Metrics } from '../gateway/metrics.js';
import { openDatabase } from '../gateway/store/db.js';
import { queryBuckets } from '../gateway/store/queries.js';
import { applyRetention } from '../gateway/store/retention.js';
import { StoreWriter } from '../gateway/store/writer.js';
import type { Reading } from '../gateway/contract/types.js';
import { removeDir, tempDir } from './helpers/gateway.js';
import { parseBucket, parseTime } from '../gateway/kernel/query-params.js';
import { readOnlySql } from '../gateway/store/sandbox.js';

const log = createLogger('silent', { pretty: false });

async function open(path: string, opts: Partial<{ flushIntervalMs: number; flushRows: number; maxQueueRows: number }> = {}) {
  const db = await openDatabase(path);
  const metrics = new Metrics();
  const bus = createBus();
  const writer = await StoreWriter.open(
    db.writer,
    { flushIntervalMs: 10, flushRows: 1000, maxQueueRows: 100_000, ...opts },
    metrics,
    bus,
    log,
  );
  return { db, metrics, bus, writer };
}

const reading = (i: number, ts = Date.now()): Reading => ({ ts, device: `d${i % 3}`, point: 'p', value: i });

async function rows(db: Awaited<ReturnType<typeof openDatabase>>, sql: string) {
  return (await readOnlySql(db.reader, sql)).rows;
}

t.test('group commit: many writers share few commits, all resolve after commit', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'a.duckdb'), { flushIntervalMs: 20, flushRows: 100_000 });
  let commits = 0;
  s.bus.on('committed', () => commits++);
  await Promise.all(Array.from({ length: 500 }, (_, i) => s.writer.write([reading(i)])));
  t.ok(commits >= 1 && commits <= 5, `500 writes in ${commits} commits`);
  t.same(await rows(s.db, 'SELECT count(*)::INT FROM readings'), [[500]]);
  await s.writer.close();
  s.db.close();
});

t.test('flushRows commits before the interval', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'b.duckdb'), { flushIntervalMs: 50, flushRows: 10 });
  const start = performance.now();
  await s.writer.write(Array.from({ length: 10 }, (_, i) => reading(i)));
  t.ok(performance.now() - start < 50, 'did not wait for the timer');
  await s.writer.close();
  s.db.close();
});

t.test('a backlog is committed in flushRows-sized commits, in order', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'bk.duckdb'), { flushIntervalMs: 50, flushRows: 10 });
  const sizes: number[] = [];
  s.bus.on('committed', (r) => sizes.push(r.length));
  await Promise.all(Array.from({ length: 12 }, (_, i) => s.writer.write(Array.from({ length: 5 }, (_, j) => reading(i * 5 + j)))));
  t.same(
    sizes.reduce((a, b) => a + b, 0),
    60,
  );
  t.ok(Math.max(...sizes) <= 10, `commit sizes ${sizes.join(', ')}`);
  t.same(
    await rows(s.db, 'SELECT value::INT FROM readings ORDER BY seq'),
    Array.from({ length: 60 }, (_, i) => [i]),
    'in order',
  );
  await s.writer.close();
  s.db.close();
});

t.test('seq is gap-free and continues after reopen; values round-trip by type', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const path = join(dir, 'c.duckdb');
  let s = await open(path);
  await s.writer.write([
    reading(1),
    { ts: Date.now(), device: 'x', point: 'on', value: true },
    { ts: Date.now(), device: 'x', point: 's', value: 'hi' },
  ]);
  await s.writer.write([], [{ id: 'e1', ts: Date.now(), type: 'test.event', source: '/t', data: { a: 1 } }]);
  await s.writer.close();
  s.db.close();
  s = await open(path);
  t.same(s.writer.nextSeq, { readings: 4, events: 2 });
  await s.writer.write([reading(2), reading(3)]);
  t.same(await rows(s.db, 'SELECT seq::INT FROM readings ORDER BY seq'), [[1], [2], [3], [4], [5]]);
  t.same(await rows(s.db, "SELECT value, text FROM readings WHERE device = 'x' ORDER BY point"), [
    [1, 'true'],
    [null, 'hi'],
  ]);
  t.same(await rows(s.db, 'SELECT seq::INT, type, data::VARCHAR FROM events'), [[1, 'test.event', '{"a":1}']]);
  await s.writer.close();
  s.db.close();
});

t.test('a full queue rejects lossy writers and delays waiting ones', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'd.duckdb'), { flushIntervalMs: 30, flushRows: 1_000_000, maxQueueRows: 10 });
  const first = s.writer.write(Array.from({ length: 8 }, (_, i) => reading(i)));
  await t.rejects(s.writer.write([reading(1), reading(2), reading(3)]), { name: 'QueueFullError', message: /limit 10/ });
  const waited = s.writer.write([reading(4), reading(5), reading(6)], [], { waitForSpace: true });
  await first;
  await waited;
  t.same(await rows(s.db, 'SELECT count(*)::INT FROM readings'), [[11]]);
  await s.writer.close();
  await t.rejects(s.writer.write([reading(1)]), { name: 'StoreClosedError' });
  s.db.close();
});

t.test('retention deletes by age and by disk size, readings before events, and counts it', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const path = join(dir, 'e.duckdb');
  const s = await open(path, { flushRows: 100_000 });
  const day = 86_400_000;
  const now = Date.now();
  await s.writer.write(
    Array.from({ length: 100 }, (_, i) => reading(i, now - 40 * day)),
    [{ id: 'old', ts: now - 40 * day, type: 'x', source: '/t' }],
  );
  await s.writer.write(
    Array.from({ length: 50 }, (_, i) => reading(i, now)),
    [{ id: 'new', ts: now, type: 'x', source: '/t' }],
  );
  const byAge = await applyRetention(s.db.instance, path, { maxAgeDays: 30, maxDiskMB: 1024 }, s.metrics, log, now);
  t.same(byAge.age, { readings: 100, events: 1, alerts: 0 });
  t.same(await rows(s.db, 'SELECT count(*)::INT FROM readings'), [[50]]);

  // A limit far below the file's size: readings are deleted oldest first until none are
  // left, and only then events.
  const byDisk = await applyRetention(s.db.instance, path, { maxAgeDays: 30, maxDiskMB: 0.001 }, s.metrics, log, now);
  t.equal(byDisk.disk.readings, 50, 'all readings dropped first');
  t.equal(byDisk.disk.events, 1, 'then events');
  const text = await s.metrics.registry.metrics();
  t.match(text, /outpost_retention_rows_dropped_total\{table="readings",reason="age"\} 100/);
  t.match(text, /outpost_retention_rows_dropped_total\{table="readings",reason="disk"\} 50/);
  await s.writer.close();
  s.db.close();
  // Both tables are empty now; numbering must still continue after the deleted rows.
  const again = await open(path);
  t.same(again.writer.nextSeq, { readings: 151, events: 3 }, 'seq is never reused after retention');
  await again.writer.close();
  again.db.close();
});

t.test('waiting writers are served in order and never overfill the queue', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'q.duckdb'), { flushIntervalMs: 5, flushRows: 1_000_000, maxQueueRows: 10 });
  // Every committed batch was in the queue at once, so no batch may exceed the limit.
  let biggestBatch = 0;
  s.bus.on('committed', (r) => (biggestBatch = Math.max(biggestBatch, r.length)));
  const order: number[] = [];
  const writes = Array.from({ length: 12 }, (_, i) =>
    s.writer
      .write([reading(i), reading(i + 100), reading(i + 200), reading(i + 300)], [], { waitForSpace: true })
      .then(() => order.push(i)),
  );
  await Promise.all(writes);
  t.ok(biggestBatch <= 10 && biggestBatch >= 8, `biggest batch ${biggestBatch} rows (limit 10)`);
  t.same(
    order,
    [...order].sort((a, b) => a - b),
    'first come, first served',
  );
  t.same(await rows(s.db, 'SELECT count(*)::INT FROM readings'), [[48]]);
  await s.writer.close();
  s.db.close();
});

t.test('read-only SQL refuses writes and multiple statements', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'f.duckdb'));
  await t.rejects(readOnlySql(s.db.reader, 'DELETE FROM readings'), { message: /read-only.*DELETE statement/ });
  await t.rejects(readOnlySql(s.db.reader, 'DROP TABLE readings'), { message: /DROP statement/ });
  await t.rejects(readOnlySql(s.db.reader, 'SELECT 1; SELECT 2'), { message: /exactly one SQL statement, got 2/ });
  await t.rejects(readOnlySql(s.db.reader, 'SELEC 1'), { message: /SQL error/ });
  const r = await readOnlySql(s.db.reader, 'SELECT * FROM range(5)', 3);
  t.same(r, { columns: ['range'], rows: [['0'], ['1'], ['2']], truncated: true });
  await s.writer.close();
  s.db.close();
});

t.test('bucketed aggregation is computed in DuckDB', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = await open(join(dir, 'g.duckdb'));
  const base = Date.UTC(2026, 0, 1);
  await s.writer.write(
    [1, 2, 3, 10, 20].map((v, i) => ({ ts: base + (i < 3 ? i * 1000 : 60_000 + i), device: 'm', point: 'p', value: v })),
  );
  const b = await queryBuckets(s.db.instance, { device: 'm', limit: 100 }, '1m');
  t.same(b, [
    { bucket: '2026-01-01T00:00:00.000Z', device: 'm', point: 'p', avg: 2, min: 1, max: 3, count: 3 },
    { bucket: '2026-01-01T00:01:00.000Z', device: 'm', point: 'p', avg: 15, min: 10, max: 20, count: 2 },
  ]);
  t.throws(() => parseBucket('5 minutes'), { message: /bucket "5 minutes" must look like/ });
  t.equal(parseTime('-1h', 'from', 10_000_000), 10_000_000 - 3_600_000);
  t.equal(parseTime('2026-01-01T00:00:00Z', 'from'), base);
  t.throws(() => parseTime('soon', 'to'), { message: /to="soon" is not a time/ });
  await s.writer.close();
  s.db.close();
});
