// The cloud API over real HTTP on loopback: enrollment, signed ingest with its
// idempotency rules, refusals, gateway status/commands/config, office queries and export.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import t from 'tap';
import { newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { H, PARQUET_MEDIA_TYPE, authorization, batchKey, type CloudCommand } from '../sync/protocol.js';
import type { CloudEvent, CloudReading, CommandRecord, GatewayInfo, ReadingBucket } from '../sync/cloud/store.js';
import { KeyedQueue, QueueFullError } from '../sync/cloud/keyed-queue.js';
import {
  enrollGateway,
  ingest,
  office,
  parquetBatch,
  signedFetch,
  startCloud,
  type GatewayCreds,
  type Row,
  type TestCloud,
} from './helpers/cloud.js';
import { removeDir, tempDir } from './helpers/gateway.js';

const T0 = Date.parse('2024-05-01T00:00:00.000Z');
const VIEWER = newApiToken();
const OPERATOR = newApiToken();
const BOOT = 'oet_bootstrap-token-for-tests';
const EXPIRED = 'oet_expired-token-for-tests';

const reading = (seq: number, value: number, extra: Row = {}): Row => ({
  seq,
  ts: T0 + seq * 1000,
  device: 'd1',
  point: 'temp',
  value,
  unit: 'C',
  quality: 'good',
  ...extra,
});

let cloud: TestCloud;
t.before(async () => {
  cloud = await startCloud({
    tokens: [
      { name: 'look', role: 'viewer', sha256: sha256Hex(VIEWER) },
      { name: 'ops', role: 'operator', sha256: sha256Hex(OPERATOR) },
    ],
    enrollmentTokens: [
      { sha256: sha256Hex(BOOT), site: 'test' },
      { sha256: sha256Hex(EXPIRED), site: 'test', expiresAt: '2020-01-01T00:00:00Z' },
    ],
    limits: { maxBatchBytes: 200_000, maxBatchRows: 1000 },
  });
});
t.teardown(async () => {
  await cloud.stop();
  removeDir(cloud.dir);
});

const enroll = (body: Record<string, unknown>) =>
  fetch(`${cloud.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
    async (r) => ({
      status: r.status,
      body: (await r.json()) as GatewayCreds & { error?: string },
    }),
  );

t.test('enrollment: one-time, bound, expiring tokens; re-enrolling rotates the secret', async (t) => {
  const bound = await cloud.mintEnrollmentToken('test', 'gw-e');
  const wrongId = await enroll({ token: bound, gatewayId: 'gw-other', site: 'test' });
  t.equal(wrongId.status, 401);
  t.match(wrongId.body.error, /gatewayId: enrollment token is not valid for gateway "gw-other"/);
  const wrongSite = await enroll({ token: bound, gatewayId: 'gw-e', site: 'elsewhere' });
  t.equal(wrongSite.status, 401, 'another site is refused');
  const ok = await enroll({ token: bound, gatewayId: 'gw-e', site: 'test', name: 'Hall A' });
  t.equal(ok.status, 200, 'the refusals did not consume the token');
  t.same({ gatewayId: ok.body.gatewayId, site: ok.body.site }, { gatewayId: 'gw-e', site: 'test' });
  t.match(ok.body.secret, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');

  const reuse = await enroll({ token: bound, gatewayId: 'gw-e', site: 'test' });
  t.equal(reuse.status, 401);
  t.match(reuse.body.error, /already used/);
  const expired = await enroll({ token: EXPIRED, gatewayId: 'gw-x', site: 'test' });
  t.equal(expired.status, 401);
  t.match(expired.body.error, /expired at 2020-01-01T00:00:00.000Z/);
  t.equal((await enroll({ token: 'oet_nope', gatewayId: 'gw-x', site: 'test' })).status, 401, 'unknown token');
  const boot = await enroll({ token: BOOT, gatewayId: 'gw-boot', site: 'test' });
  t.equal(boot.status, 200, 'a config bootstrap token enrolls any gateway of its site');
  t.equal((await enroll({ token: BOOT, gatewayId: 'gw-boot2', site: 'test' })).status, 401, 'once');

  const before = await signedFetch(cloud.url, ok.body, 'GET', '/api/v1/gateways/me/commands');
  t.equal(before.status, 200);
  const again = await enroll({ token: await cloud.mintEnrollmentToken('test'), gatewayId: 'gw-e', site: 'test' });
  t.equal(again.status, 200);
  t.not(again.body.secret, ok.body.secret);
  t.equal((await signedFetch(cloud.url, ok.body, 'GET', '/api/v1/gateways/me/commands')).status, 401, 'old secret stops working');
  t.equal((await signedFetch(cloud.url, again.body, 'GET', '/api/v1/gateways/me/commands')).status, 200, 'new one works');
  const list = await office<GatewayInfo[]>(cloud.url, VIEWER, '/api/v1/gateways');
  t.equal(list.body.find((g) => g.id === 'gw-e')?.name, 'Hall A', 'name kept across re-enrollment');
});

t.test('ingest: stored rows are queryable; retries, overlaps and gaps follow the high-water mark', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-i');
  const rows = [1, 2, 3, 4, 5].map((s) => reading(s, s * 1.5));
  rows[4] = reading(5, 1, { text: 'true', unit: null, quality: 'uncertain' });
  const first = await ingest(cloud.url, gw, 'telemetry', rows);
  t.equal(first.status, 200);
  t.same(first.body, { stream: 'telemetry', ackedSeq: 5, inserted: 5, duplicate: false });

  const q = await office<{ readings: CloudReading[] }>(cloud.url, VIEWER, '/api/v1/readings?gateway=gw-i');
  t.equal(q.status, 200);
  t.same(q.body.readings[0], {
    gateway: 'gw-i',
    site: 'test',
    seq: 1,
    ts: '2024-05-01T00:00:01.000Z',
    device: 'd1',
    point: 'temp',
    value: 1.5,
    text: null,
    unit: 'C',
    quality: 'good',
  });
  t.same(q.body.readings[4], {
    gateway: 'gw-i',
    site: 'test',
    seq: 5,
    ts: '2024-05-01T00:00:05.000Z',
    device: 'd1',
    point: 'temp',
    value: 1,
    text: 'true',
    unit: null,
    quality: 'uncertain',
  });
  t.same(
    q.body.readings.map((r) => r.value),
    [1.5, 3, 4.5, 6, 1],
  );

  const retry = await ingest(cloud.url, gw, 'telemetry', rows);
  t.same(retry.body, { stream: 'telemetry', ackedSeq: 5, inserted: 0, duplicate: true }, 'a retry stores nothing');
  const overlap = await ingest(
    cloud.url,
    gw,
    'telemetry',
    [4, 5, 6, 7, 8].map((s) => reading(s, s * 10)),
  );
  t.same(overlap.body, { stream: 'telemetry', ackedSeq: 8, inserted: 3, duplicate: false });
  const gap = await ingest(
    cloud.url,
    gw,
    'telemetry',
    [20, 21].map((s) => reading(s, s)),
  );
  t.same(gap.body, { stream: 'telemetry', ackedSeq: 21, inserted: 2, duplicate: false }, 'a gap is accepted');
  const all = await office<{ readings: CloudReading[] }>(cloud.url, VIEWER, '/api/v1/readings?gateway=gw-i&limit=100');
  t.same(
    all.body.readings.map((r) => [r.seq, r.value]),
    [
      [1, 1.5],
      [2, 3],
      [3, 4.5],
      [4, 6],
      [5, 1],
      [6, 60],
      [7, 70],
      [8, 80],
      [20, 20],
      [21, 21],
    ],
  );
  const window = await office<{ readings: CloudReading[] }>(
    cloud.url,
    VIEWER,
    `/api/v1/readings?gateway=gw-i&from=${T0 + 2000}&to=2024-05-01T00:00:04Z&limit=1`,
  );
  t.same(
    window.body.readings.map((r) => r.seq),
    [2],
    'from inclusive, ISO to, limit',
  );

  // Events: priority and events seqs interleave in one gateway table.
  const ev = (seq: number, type: string, extra: Row = {}): Row => ({
    seq,
    id: `e${seq}`,
    time: T0 + seq * 1000,
    type,
    source: 'gw-i/rules',
    subject: 'd1',
    data: { n: seq },
    ...extra,
  });
  t.same((await ingest(cloud.url, gw, 'priority', [ev(2, 'alert.opened'), ev(5, 'access.granted')])).body, {
    stream: 'priority',
    ackedSeq: 5,
    inserted: 2,
    duplicate: false,
  });
  t.same(
    (
      await ingest(cloud.url, gw, 'events', [
        ev(1, 'device.online'),
        ev(3, 'device.offline', { subject: null, data: null }),
        ev(4, 'rule.fired'),
      ])
    ).body,
    {
      stream: 'events',
      ackedSeq: 4,
      inserted: 3,
      duplicate: false,
    },
  );
  const events = await office<{ events: CloudEvent[] }>(cloud.url, VIEWER, '/api/v1/events?gateway=gw-i&type=device.*');
  t.same(
    events.body.events.map((e) => [e.seq, e.type, e.stream, e.subject, e.data]),
    [
      [3, 'device.offline', 'events', null, null],
      [1, 'device.online', 'events', 'd1', { n: 1 }],
    ],
    'prefix filter, newest first',
  );
  const alerts = await office<{ alerts: CloudEvent[] }>(cloud.url, VIEWER, '/api/v1/alerts?gateway=gw-i');
  t.same(
    alerts.body.alerts.map((e) => [e.id, e.time, e.stream]),
    [['e2', '2024-05-01T00:00:02.000Z', 'priority']],
  );
});

t.test('refusals: signatures, clock skew, foreign keys, malformed batches, limits', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-r');
  const other = await enrollGateway(cloud, 'gw-r2');
  const rows = [reading(1, 1), reading(2, 2)];
  const forged = await ingest(cloud.url, { gatewayId: 'gw-r', secret: other.secret }, 'telemetry', rows);
  t.equal(forged.status, 401);
  t.match(forged.body.error, /bad signature/);
  t.equal((await ingest(cloud.url, { gatewayId: 'gw-nobody', secret: gw.secret }, 'telemetry', rows)).status, 401, 'unknown gateway');

  const good = await parquetBatch('telemetry', rows);
  const missing = await signedFetch<{ error: string }>(cloud.url, gw, 'GET', '/api/v1/gateways/me/commands', {
    headers: { authorization: '' },
  });
  t.equal(missing.status, 401);
  t.match(missing.body.error, /expected "Outpost-HMAC gw=<id>, ts=<ms>, sig=<64 hex>"/);
  t.equal((await ingest(cloud.url, gw, 'telemetry', rows, { body: good })).status, 200, 'control: the batch as signed is accepted');
  // Sign one body, send another under the same headers.
  const headers = {
    [H.stream]: 'telemetry',
    [H.firstSeq]: '3',
    [H.lastSeq]: '4',
    [H.rows]: '2',
    [H.idempotencyKey]: batchKey('gw-r', 'telemetry', 3, 4),
  };
  const signedFor = await parquetBatch('telemetry', [reading(3, 3), reading(4, 4)]);
  const tampered = await fetch(`${cloud.url}/api/v1/ingest`, {
    method: 'POST',
    headers: {
      ...headers,
      authorization: authorization('gw-r', gw.secret, 'POST', '/api/v1/ingest', headers[H.idempotencyKey], signedFor),
      'content-type': PARQUET_MEDIA_TYPE,
    },
    body: await parquetBatch('telemetry', [reading(3, 300), reading(4, 400)]),
  });
  t.equal(tampered.status, 401, 'tampered body');
  const otherPath = await fetch(`${cloud.url}/api/v1/gateways/me/config`, {
    headers: { authorization: authorization('gw-r', gw.secret, 'GET', '/api/v1/gateways/me/commands', '', '') },
  });
  t.equal(otherPath.status, 401, 'a signature is bound to its path');

  const stale = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { now: Date.now() - 10 * 60_000 });
  t.equal(stale.status, 401);
  t.match(stale.body.error, /more than 300 s from the server time/);
  const serverTime = Number(stale.headers.get(H.serverTime));
  t.ok(Math.abs(serverTime - Date.now()) < 5000, `x-outpost-server-time is the server clock (${serverTime})`);

  const foreign = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { key: batchKey('gw-r2', 'telemetry', 3, 3) });
  t.equal(foreign.status, 403);
  t.match(foreign.body.error, /batch belongs to another gateway/);
  const mismatchKey = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { key: batchKey('gw-r', 'telemetry', 3, 4) });
  t.equal(mismatchKey.status, 400);
  t.match(mismatchKey.body.error, /idempotency-key: must be "gw-r:telemetry:3-3"/);
  const notInt = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { headers: { [H.firstSeq]: 'three' } });
  t.equal(notInt.status, 400);
  t.equal(notInt.body.error, 'x-outpost-first-seq: must be an integer');

  const wrongCols = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], {
    body: await parquetBatch(
      'telemetry',
      [reading(3, 3)],
      [
        ['seq', 'BIGINT'],
        ['ts', 'TIMESTAMPTZ'],
        ['device', 'VARCHAR'],
        ['point', 'VARCHAR'],
        ['value', 'DOUBLE'],
        ['txt', 'VARCHAR'],
        ['unit', 'VARCHAR'],
        ['quality', 'VARCHAR'],
      ],
    ),
  });
  t.equal(wrongCols.status, 400);
  t.match(
    wrongCols.body.error,
    /Parquet columns for stream "telemetry" must be seq, ts, device, point, value, text, unit, quality \(missing text; unexpected txt\)/,
  );
  const eventsAsTelemetry = await ingest(cloud.url, gw, 'events', [reading(3, 3)], {
    body: await parquetBatch('telemetry', [reading(3, 3)]),
  });
  t.equal(eventsAsTelemetry.status, 400, 'a telemetry file on the events stream');
  const count = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3), reading(4, 4), reading(5, 5)], { headers: { [H.rows]: '2' } });
  t.equal(count.status, 400);
  t.match(count.body.error, /has 3 rows but x-outpost-rows says 2/);
  const range = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3), reading(5, 5)], {
    headers: { [H.firstSeq]: '2', [H.rows]: '2' },
    key: batchKey('gw-r', 'telemetry', 2, 5),
  });
  t.equal(range.status, 400);
  t.match(range.body.error, /smallest seq is 3 but x-outpost-first-seq says 2/);
  const garbage = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { body: Buffer.from('not parquet at all') });
  t.equal(garbage.status, 400);
  t.match(garbage.body.error, /^body: /);

  const many = Array.from({ length: 1001 }, (_, i) => reading(i + 3, i));
  const tooMany = await ingest(cloud.url, gw, 'telemetry', many, { body: good });
  t.equal(tooMany.status, 413);
  t.match(tooMany.body.error, /exceeds limits.maxBatchRows \(1000\)/);
  const huge = await ingest(cloud.url, gw, 'telemetry', [reading(3, 3)], { body: Buffer.alloc(300_000, 1) });
  t.equal(huge.status, 413);
  t.match(huge.body.error, /larger than limits.maxBatchBytes/);

  const list = await office<GatewayInfo[]>(cloud.url, VIEWER, '/api/v1/gateways');
  t.equal(list.body.find((g) => g.id === 'gw-r')?.streams.telemetry?.ackedSeq, 2, 'no refused batch moved the high-water mark');
  t.same(readdirSync(join(cloud.dir, 'tmp')), [], 'temp files are deleted, refused or not');
  const stored = await office<{ readings: CloudReading[] }>(cloud.url, VIEWER, '/api/v1/readings?gateway=gw-r');
  t.same(
    stored.body.readings.map((r) => r.value),
    [1, 2],
  );
});

t.test('status reports show in the gateway list', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-s');
  const stream = (ackedSeq: number, dropped: number) => ({ backlogRows: 10, backlogBytes: 1000, oldestUnsentTs: T0, ackedSeq, dropped });
  const report = {
    version: '0.1.0',
    at: T0,
    streams: { priority: stream(1, 0), events: stream(2, 0), telemetry: stream(3, 42) },
    lastSuccessAt: T0,
    lastError: null,
  };
  const res = await signedFetch(cloud.url, gw, 'POST', '/api/v1/gateways/me/status', { body: report });
  t.equal(res.status, 204);
  const list = await office<GatewayInfo[]>(cloud.url, VIEWER, '/api/v1/gateways');
  const mine = list.body.find((g) => g.id === 'gw-s')!;
  t.same(mine.status, report);
  t.equal(mine.dropped, 42);
  t.equal(mine.site, 'test');
  t.ok(mine.lastSeen && Date.now() - Date.parse(mine.lastSeen) < 10_000, 'lastSeen updated');
  t.same(Object.keys(mine.streams).sort(), ['events', 'priority', 'telemetry']);
  t.equal((await office(cloud.url, 'opt_wrong', '/api/v1/gateways')).status, 401, 'office routes need a token');
});

t.test('command queue round trip with roles', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-c');
  const other = await enrollGateway(cloud, 'gw-c2');
  const lock = { kind: 'lock', args: { lock: 'front', action: 'unlock', seconds: 5 } };
  const denied = await office<{ error: string }>(cloud.url, VIEWER, '/api/v1/gateways/gw-c/commands', { method: 'POST', body: lock });
  t.equal(denied.status, 403);
  t.match(denied.body.error, /role "viewer" may not do this; needs "operator"/);
  const invalid = await office<{ error: string }>(cloud.url, OPERATOR, '/api/v1/gateways/gw-c/commands', {
    method: 'POST',
    body: { kind: 'lock', args: { lock: 'front', action: 'open' } },
  });
  t.equal(invalid.status, 400);
  t.equal(invalid.body.error, 'args.action: must be "lock" or "unlock"');
  const badWrite = await office<{ error: string }>(cloud.url, OPERATOR, '/api/v1/gateways/gw-c/commands', {
    method: 'POST',
    body: { kind: 'write', args: { device: 'd1', point: 'sp', value: [1] } },
  });
  t.equal(badWrite.body.error, 'args.value: must be a number, boolean or string');
  t.equal((await office(cloud.url, OPERATOR, '/api/v1/gateways/gw-none/commands', { method: 'POST', body: lock })).status, 404);

  const a = await office<{ id: string }>(cloud.url, OPERATOR, '/api/v1/gateways/gw-c/commands', { method: 'POST', body: lock });
  t.equal(a.status, 201);
  const b = await office<{ id: string }>(cloud.url, OPERATOR, '/api/v1/gateways/gw-c/commands', {
    method: 'POST',
    body: { kind: 'write', args: { device: 'd1', point: 'sp', value: 21.5 } },
  });
  const pending = await signedFetch<{ commands: CloudCommand[] }>(cloud.url, gw, 'GET', '/api/v1/gateways/me/commands');
  t.equal(pending.status, 200);
  t.same(
    pending.body.commands.map((c) => ({ id: c.id, kind: c.kind, args: c.args, requestedBy: c.requestedBy })),
    [
      { id: a.body.id, kind: 'lock', args: { lock: 'front', action: 'unlock', seconds: 5 }, requestedBy: 'office:ops' },
      { id: b.body.id, kind: 'write', args: { device: 'd1', point: 'sp', value: 21.5 }, requestedBy: 'office:ops' },
    ],
    'oldest first',
  );
  t.same(
    (await signedFetch<{ commands: CloudCommand[] }>(cloud.url, other, 'GET', '/api/v1/gateways/me/commands')).body.commands,
    [],
    'only its own',
  );
  t.equal(
    (await signedFetch(cloud.url, other, 'POST', `/api/v1/gateways/me/commands/${a.body.id}/ack`, { body: { ok: true } })).status,
    404,
    "another gateway's command",
  );
  t.equal((await signedFetch(cloud.url, gw, 'POST', '/api/v1/gateways/me/commands/nope/ack', { body: { ok: true } })).status, 404);
  t.equal(
    (await signedFetch(cloud.url, gw, 'POST', `/api/v1/gateways/me/commands/${a.body.id}/ack`, { body: { ok: true, detail: 'unlocked' } }))
      .status,
    204,
  );
  t.equal(
    (await signedFetch(cloud.url, gw, 'POST', `/api/v1/gateways/me/commands/${a.body.id}/ack`, { body: { ok: false, detail: 'late' } }))
      .status,
    204,
    'idempotent',
  );
  t.equal(
    (
      await signedFetch(cloud.url, gw, 'POST', `/api/v1/gateways/me/commands/${b.body.id}/ack`, {
        body: { ok: false, detail: 'no such point' },
      })
    ).status,
    204,
  );
  t.same(
    (await signedFetch<{ commands: CloudCommand[] }>(cloud.url, gw, 'GET', '/api/v1/gateways/me/commands')).body.commands,
    [],
    'acked ones are no longer pending',
  );
  const listed = await office<{ commands: CommandRecord[] }>(cloud.url, VIEWER, '/api/v1/gateways/gw-c/commands');
  const byId = new Map(listed.body.commands.map((c) => [c.id, c]));
  t.same([byId.get(a.body.id)?.status, byId.get(a.body.id)?.detail], ['done', 'unlocked'], 'first ack kept');
  t.same([byId.get(b.body.id)?.status, byId.get(b.body.id)?.detail], ['failed', 'no such point']);
  t.ok(byId.get(a.body.id)?.deliveredAt, 'delivery time recorded');
});

t.test('desired config round trip', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-d');
  t.equal((await signedFetch(cloud.url, gw, 'GET', '/api/v1/gateways/me/config')).status, 204, 'none yet');
  const put = (yaml: string, token = cloud.adminToken) =>
    office<{ version?: number; error?: string }>(cloud.url, token, '/api/v1/gateways/gw-d/config', { method: 'PUT', body: { yaml } });
  t.equal((await put('site: test\n', OPERATOR)).status, 403, 'admin only');
  const broken = await put('site: test\nhttp:\n  prot: 1\n');
  t.equal(broken.status, 400);
  t.equal(broken.body.error, 'yaml:3:3 http.prot: unknown key "prot" (did you mean "port"?)');
  t.match((await put('site: other\n')).body.error, /site "other" does not match the gateway's site "test"/);
  t.same((await put('site: test\n')).body, { version: 1 });
  const v2 = 'site: test\nlog:\n  level: debug\n';
  t.same((await put(v2)).body, { version: 2 });
  const got = await signedFetch(cloud.url, gw, 'GET', '/api/v1/gateways/me/config');
  t.same([got.status, got.body], [200, { version: 2, yaml: v2 }]);
  t.equal((await signedFetch(cloud.url, gw, 'POST', '/api/v1/gateways/me/config/ack', { body: { version: 2, ok: true } })).status, 204);
  t.equal((await signedFetch(cloud.url, gw, 'POST', '/api/v1/gateways/me/config/ack', { body: { version: 9, ok: true } })).status, 404);
});

t.test('bucketed readings: exact count/avg/min/max/last', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-b');
  const at = (s: number, seq: number, value: number): Row => ({
    seq,
    ts: T0 + s * 1000,
    device: 'b1',
    point: 't',
    value,
    unit: null,
    quality: null,
  });
  await ingest(cloud.url, gw, 'telemetry', [at(10, 1, 1), at(20, 2, 2), at(50, 3, 6), at(70, 4, 10), at(90, 5, 20)]);
  const q = await office<{ bucket: string; buckets: ReadingBucket[] }>(cloud.url, VIEWER, '/api/v1/readings?gateway=gw-b&bucket=1m');
  t.equal(q.status, 200);
  t.same(q.body.buckets, [
    { gateway: 'gw-b', device: 'b1', point: 't', bucket: '2024-05-01T00:00:00.000Z', count: 3, avg: 3, min: 1, max: 6, last: 6 },
    { gateway: 'gw-b', device: 'b1', point: 't', bucket: '2024-05-01T00:01:00.000Z', count: 2, avg: 15, min: 10, max: 20, last: 20 },
  ]);
  const badBucket = await office<{ error: string }>(cloud.url, VIEWER, '/api/v1/readings?bucket=1w');
  t.equal(badBucket.status, 400);
  t.match(badBucket.body.error, /bucket "1w" must look like/);
  t.equal((await office(cloud.url, VIEWER, "/api/v1/readings?device=x'%20OR%201=1--")).status, 200, 'filters are parameters');
});

t.test('export streams a zstd Parquet file DuckDB can read', async (t) => {
  const gw = await enrollGateway(cloud, 'gw-x');
  await ingest(
    cloud.url,
    gw,
    'telemetry',
    Array.from({ length: 50 }, (_, i) => reading(i + 1, i)),
  );
  const res = await fetch(`${cloud.url}/api/v1/export?gateway=gw-x&stream=telemetry`, { headers: { authorization: `Bearer ${VIEWER}` } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/vnd.apache.parquet');
  t.match(res.headers.get('content-disposition'), /^attachment; filename="outpost-telemetry-.*\.parquet"$/);
  t.equal(res.headers.get('x-outpost-rows'), '50');
  t.equal(res.headers.get('x-outpost-truncated'), 'false');
  const file = join(cloud.dir, 'export-test.parquet');
  writeFileSync(file, Buffer.from(await res.arrayBuffer()));
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const r = (
    await c.runAndReadAll(`SELECT count(*)::DOUBLE, sum(value), min(seq)::DOUBLE, max(gateway) FROM read_parquet('${file}')`)
  ).getRows();
  t.same(r, [[50, 1225, 1, 'gw-x']]);
  c.closeSync();
  db.closeSync();
});

t.test('restart on the same dir keeps data, high-water marks, secrets and the admin token', async (t) => {
  const dir = tempDir('outpost-cloud-');
  t.teardown(() => removeDir(dir));
  let c = await startCloud({}, dir);
  const token = c.adminToken;
  const gw = await enrollGateway(c, 'gw-p');
  const rows = [1, 2, 3].map((s) => reading(s, s));
  t.equal((await ingest(c.url, gw, 'telemetry', rows)).body.ackedSeq, 3);
  await c.stop();
  c = await startCloud({}, dir);
  t.teardown(() => c.stop());
  t.equal(c.adminToken, token);
  const again = await ingest(c.url, gw, 'telemetry', rows);
  t.same(again.body, { stream: 'telemetry', ackedSeq: 3, inserted: 0, duplicate: true });
  const q = await office<{ readings: CloudReading[] }>(c.url, token, '/api/v1/readings?gateway=gw-p');
  t.same(
    q.body.readings.map((r) => r.value),
    [1, 2, 3],
  );
});

t.test('keyed queue: FIFO per key, parallel across keys, bounded', async (t) => {
  const q = new KeyedQueue(2);
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a1 = q.run('a', async () => {
    await gate;
    order.push('a1');
  });
  const a2 = q.run('a', async () => void order.push('a2'));
  await t.rejects(
    q.run('a', async () => undefined),
    QueueFullError,
    'a third waiter on a full lane is refused',
  );
  await q.run('b', async () => void order.push('b1'));
  release();
  await Promise.all([a1, a2]);
  t.same(order, ['b1', 'a1', 'a2']);
  t.equal(q.size('a'), 0, 'drained lanes are dropped');
});

t.test('every answer is counted by route and status; stored rows by stream', async (t) => {
  const c = await startCloud();
  t.teardown(async () => {
    await c.stop();
    removeDir(c.dir);
  });
  const gw = await enrollGateway(c, 'gw-m');
  t.equal((await ingest(c.url, gw, 'telemetry', [reading(1, 20), reading(2, 21)])).status, 200);
  t.equal((await ingest(c.url, gw, 'telemetry', [reading(1, 20), reading(2, 21)])).status, 200, 'a retry');
  t.equal((await ingest(c.url, { ...gw, secret: 'forged' }, 'telemetry', [reading(3, 22)])).status, 401);
  t.equal(
    (await ingest(c.url, gw, 'telemetry', [reading(3, 22)], { now: Date.now() - 3_600_000 })).status,
    401,
    'a stale, replayed request',
  );
  t.equal((await office(c.url, 'nope', '/metrics')).status, 401, 'metrics need an office token');
  const text = (await office<string>(c.url, c.adminToken, '/metrics')).body;
  const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1]);
  t.equal(value('outpost_cloud_requests_total{route="/api/v1/ingest",status="200"}'), 2);
  t.equal(value('outpost_cloud_requests_total{route="/api/v1/ingest",status="401"}'), 2);
  t.equal(value('outpost_cloud_ingest_batches_total{stream="telemetry",result="new"}'), 1);
  t.equal(value('outpost_cloud_ingest_batches_total{stream="telemetry",result="duplicate"}'), 1);
  t.equal(value('outpost_cloud_ingest_rows_total{stream="telemetry"}'), 2);
});
