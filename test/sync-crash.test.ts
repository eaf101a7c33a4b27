// No loss and no duplicates at the cloud under kill -9, on either side of the uplink.
//  1. The gateway runs as a child process with a backlog to upload and is kill -9'd at
//     random moments while batches are on the wire (and while MQTT QoS1 readings arrive).
//  2. The cloud runs as a child process and is kill -9'd at random moments while it
//     ingests the in-process gateway's backlog, then restarted on the same files and port.
// Afterwards the cloud must hold every seq 1..N of the gateway exactly once, with the
// gateway's own values, and the gateway must report an empty backlog.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { stringify } from 'yaml';
import { enroll, writeCredentials } from '../sync/credentials.js';
import type { SyncStatus } from '../sync/uploader.js';
import { office, readAdminToken, startCloud, waitForCloud, writeCloudConfig } from './helpers/cloud.js';
import { api, freePort, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';
import { alive, bounded, cleanup, exited, kill9, publishNumbers, randomInt, sleep, spawnCli, type Child } from './helpers/sync-child.js';
import { cloudReadings, enrollInto, reading, type CloudReadingRow } from './helpers/sync.js';

const ROUNDS = 5;
const SYNC = {
  enabled: true,
  idleMs: 50,
  statusEveryMs: 1000,
  batchRows: 200,
  retry: { initialMs: 20, maxMs: 400, openAfterFailures: 2 },
  commands: { pollMs: 200 },
};

type GatewayInfoRow = { id: string; streams: { telemetry?: { ackedSeq: number; batches: number; duplicateBatches: number } } };

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = randomInt(0, i);
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Seqs missing from 1..n, seqs present more than once, and seqs outside 1..n. */
function seqReport(
  rows: readonly { seq: number }[],
  n: number,
): { count: number; missing: number[]; duplicated: number[]; outside: number[] } {
  const seen = new Map<number, number>();
  for (const r of rows) seen.set(r.seq, (seen.get(r.seq) ?? 0) + 1);
  return {
    count: rows.length,
    missing: range(1, n)
      .filter((s) => !seen.has(s))
      .slice(0, 50),
    duplicated: [...seen]
      .filter(([, c]) => c > 1)
      .map(([s]) => s)
      .slice(0, 50),
    outside: [...seen.keys()].filter((s) => s < 1 || s > n || !Number.isInteger(s)).slice(0, 50),
  };
}

async function localSync(url: string, token: string): Promise<SyncStatus> {
  const r = await bounded(api<SyncStatus>(url, '/api/v1/sync', token), 5000, 'GET /api/v1/sync');
  if (r.status !== 200) throw new Error(`GET /api/v1/sync: HTTP ${r.status}`);
  return r.body;
}

/** Polls the gateway until the cloud has acknowledged every reading (and it is idle). */
function drained(url: string, token: string, timeoutMs: number): Promise<SyncStatus> {
  return waitFor(
    async () => {
      const s = await localSync(url, token).catch(() => undefined);
      return s && s.streams.telemetry.backlogRows === 0 && s.consecutiveFailures === 0 ? s : undefined;
    },
    'telemetry backlog 0',
    timeoutMs,
  );
}

function dumpOnFailure(t: Test, what: string, child: () => Child | null): void {
  t.teardown(() => {
    const c = child();
    if (!t.passing() && c && c.stderr().trim()) t.comment(`${what} stderr (tail):\n${c.stderr()}`);
  });
}

t.test('kill -9 of the gateway during uploads: the cloud gets every reading exactly once', async (t) => {
  const dir = tempDir('outpost-sync-crash-gw-');
  const dataDir = join(dir, 'data');
  const cloud = await startCloud();
  let child: Child | null = null;
  let lastChild: Child | null = null;
  t.teardown(() =>
    cleanup(
      () => kill9(child?.proc),
      () => cloud.stop(),
      () => removeDir(cloud.dir),
      () => removeDir(dir),
    ),
  );
  dumpOnFailure(t, 'gateway', () => lastChild);

  await enrollInto(cloud, dataDir, 'gw-1');
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const base = {
    site: 'crash',
    dataDir,
    drivers: { mqtt: { host: '127.0.0.1', port: mqttPort } },
    http: { host: '127.0.0.1', port: httpPort },
    store: { retention: { checkIntervalS: 3600, maxAgeDays: 36500 } },
  };
  // The backlog is published with sync off, so that the crash rounds have uploads to cut.
  const seedConfig = join(dir, 'seed.yaml');
  const runConfig = join(dir, 'site.yaml');
  writeFileSync(seedConfig, stringify({ ...base, sync: { ...SYNC, enabled: false } }));
  writeFileSync(runConfig, stringify({ ...base, sync: SYNC }));
  const url = `http://127.0.0.1:${httpPort}`;
  const start = async (config: string): Promise<Child> => {
    const c = spawnCli(['run', '--config', config]);
    child = lastChild = c;
    await waitFor(
      async () => {
        if (!alive(c.proc)) throw new Error(`gateway exited during start (code ${c.proc.exitCode}): ${c.stderr()}`);
        return (await bounded(api(url, '/health'), 2000, 'gateway /health').catch(() => ({ status: 0 }))).status === 200 ? true : undefined;
      },
      'gateway health',
      15_000,
    );
    return c;
  };

  const acked: number[] = [];
  let nextNumber = 1;
  const publish = (count: number) => {
    const p = publishNumbers(mqttPort, 'crash', nextNumber, count);
    return {
      p,
      settle: async () => {
        await p.done;
        acked.push(...p.acked);
        nextNumber += p.sent();
      },
    };
  };

  // Seed: a backlog of several thousand acknowledged readings, nothing uploaded yet.
  let c = await start(seedConfig);
  const seed = publish(6000);
  await seed.settle();
  t.equal(seed.p.acked.length, 6000, 'seed: 6000 readings acknowledged with sync off');
  await kill9(c.proc);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const cloudCount = async () => (await cloudReadings(cloud)).length;

  // Crash rounds: uploads resume at start; more readings arrive; kill -9 at a random moment.
  const rounds: {
    delayMs: number;
    backlogAtKill: number;
    ackedAtKill: number;
    cloudBefore: number;
    cloudAfter: number;
    published: number;
  }[] = [];
  // Kill moments: random in 50–600 ms after the gateway is up, one from each fifth of that
  // span in shuffled order, so that short and long runs both happen in every test run.
  const slots = shuffle(range(0, ROUNDS - 1));
  for (let round = 1; round <= ROUNDS; round++) {
    const cloudBefore = await cloudCount();
    c = await start(runConfig);
    const more = publish(randomInt(200, 1200));
    const slot = slots[round - 1];
    const delayMs = randomInt(50 + Math.ceil((slot * 550) / ROUNDS), 50 + Math.floor(((slot + 1) * 550) / ROUNDS));
    await sleep(delayMs);
    // A last look, then kill -9 right away: the look itself is only a few ms.
    const s = await localSync(url, token).catch(() => null);
    await kill9(c.proc);
    child = null;
    await more.settle();
    const cloudAfter = await cloudCount();
    rounds.push({
      delayMs,
      backlogAtKill: s?.streams.telemetry.backlogRows ?? -1,
      ackedAtKill: s?.streams.telemetry.ackedSeq ?? -1,
      cloudBefore,
      cloudAfter,
      published: more.p.acked.length,
    });
    t.comment(`round ${round}: ${JSON.stringify(rounds.at(-1))}`);
  }
  // Uploads were really cut short: in most rounds the cloud took rows and the gateway still had more to send.
  const cut = rounds.filter((r) => r.cloudAfter > r.cloudBefore && r.backlogAtKill > 0).length;
  // (Not every round: a kill 50 ms after start may come before the first batch is through.)
  t.ok(cut >= 2, `${cut} of ${ROUNDS} kills landed while uploads were in progress`);
  t.ok(rounds.at(-1)!.cloudAfter > 0 && rounds.every((r) => r.backlogAtKill !== 0), 'the backlog was never drained before a kill');

  // Final run: drain, then compare the cloud with the gateway's own store.
  const t1 = Date.now();
  c = await start(runConfig);
  const final = await drained(url, token, 30_000);
  t.comment(`drained in ${Date.now() - t1} ms (with the start)`);
  t.equal(final.streams.telemetry.backlogRows, 0, 'gateway: telemetry backlog 0');
  const status = (
    await bounded(api<{ store: { nextSeq: { readings: number } } }>(url, '/api/v1/status', token), 5000, 'GET /api/v1/status')
  ).body;
  const n = status.store.nextSeq.readings - 1;
  t.equal(final.streams.telemetry.ackedSeq, n, `gateway: acked mark is the last seq (${n})`);
  const local = (
    await bounded(
      api<{ rows: [number, number, string][]; truncated: boolean }>(url, '/api/v1/query', token, {
        method: 'POST',
        body: { sql: 'SELECT seq::DOUBLE, value, device FROM readings ORDER BY seq', maxRows: 50_000 },
      }),
      10_000,
      'POST /api/v1/query',
    )
  ).body;
  t.equal(local.truncated, false, 'gateway store read in full');
  t.same(
    seqReport(
      local.rows.map(([seq]) => ({ seq })),
      n,
    ),
    { count: n, missing: [], duplicated: [], outside: [] },
    `gateway store: seq 1..${n}, gap-free`,
  );

  const rows = await cloudReadings(cloud);
  t.same(seqReport(rows, n), { count: n, missing: [], duplicated: [], outside: [] }, `cloud: seq 1..${n}, each exactly once`);
  const localValue = new Map(local.rows.map(([seq, value]) => [seq, value]));
  const wrong = rows.filter((r) => r.value !== localValue.get(r.seq)).slice(0, 20);
  t.same(wrong, [], 'cloud: every seq carries the value the gateway stored under it');
  const counters = rows.filter((r) => r.device === 'counter');
  const numbers = new Set(counters.map((r) => r.value));
  t.equal(numbers.size, counters.length, 'cloud: no reading number under two seqs');
  const lost = acked.filter((x) => !numbers.has(x));
  t.same(lost.slice(0, 50), [], `cloud: all ${acked.length} PUBACKed readings arrived`);
  t.ok(n >= acked.length, `gateway stored ${n} readings (${acked.length} acknowledged, ${nextNumber - 1} published)`);

  const info = (await office<GatewayInfoRow[]>(cloud.url, cloud.adminToken, '/api/v1/gateways')).body.find((x) => x.id === 'gw-1');
  t.equal(info?.streams.telemetry?.ackedSeq, n, 'cloud: its high-water mark for gw-1 is the last seq');
  t.comment(
    `cloud: ${info?.streams.telemetry?.batches} telemetry batches, ${info?.streams.telemetry?.duplicateBatches} of them retries of committed ones`,
  );

  const leftovers = readdirSync(join(dataDir, 'tmp')).filter((f) => f.endsWith('.parquet'));
  t.comment(`gateway: ${leftovers.length} batch file(s) left in <dataDir>/tmp by the kills`);

  c.proc.kill('SIGTERM');
  t.equal(await exited(c.proc, 12_000), 0, 'SIGTERM exits 0');
  child = null;
});

t.test('kill -9 of the cloud during ingests: the cloud ends with every seq exactly once', async (t) => {
  const TOTAL = 20_000;
  const cloudDir = tempDir('outpost-sync-crash-cloud-');
  const gwDir = tempDir('outpost-sync-crash-gw2-');
  let cloud: Child | null = null;
  let lastCloud: Child | null = null;
  let g: TestGateway | null = null;
  t.teardown(() =>
    cleanup(
      () => g?.stop(),
      () => kill9(cloud?.proc),
      () => removeDir(cloudDir),
      () => removeDir(gwDir),
    ),
  );
  dumpOnFailure(t, 'cloud', () => lastCloud);

  const { file, url } = await writeCloudConfig(cloudDir);
  const startCloudChild = async (): Promise<Child> => {
    const c = spawnCli(['cloud', '--config', file]);
    cloud = lastCloud = c;
    await waitFor(
      async () => {
        if (!alive(c.proc)) throw new Error(`cloud exited during start (code ${c.proc.exitCode}): ${c.stderr()}`);
        return (await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.ok ? true : undefined;
      },
      'cloud health',
      15_000,
    );
    await waitForCloud(url, 1000);
    return c;
  };
  await startCloudChild();
  const admin = readAdminToken(cloudDir);
  const minted = await office<{ token?: string }>(url, admin, '/api/v1/enrollment-tokens', {
    method: 'POST',
    body: { site: 'test', gatewayId: 'gw-2' },
  });
  t.equal(minted.status, 201, 'enrollment token minted');
  const agent = new Agent();
  try {
    const creds = await enroll(agent, url, { token: minted.body.token!, gatewayId: 'gw-2', site: 'test' });
    writeCredentials(join(gwDir, 'cloud-credentials.json'), creds);
  } finally {
    await agent.close();
  }
  g = await startGateway({ sync: SYNC }, gwDir); // 200-row batches: the backlog outlasts the rounds
  const gw = g;
  const acked = async () => (await localSync(gw.httpUrl, gw.adminToken)).streams.telemetry.ackedSeq;
  await gw.gw.writer.write(range(0, TOTAL - 1).map((i) => reading(i)));

  const t0 = Date.now();
  const rounds: { runMs: number; ackedAtStart: number; ackedAtKill: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const ackedAtStart = await acked();
    // Let the cloud take at least one batch from this gateway, then run a random while.
    await waitFor(
      async () => ((await acked()) > ackedAtStart || ackedAtStart >= TOTAL ? true : undefined),
      `round ${round}: an upload`,
      10_000,
    );
    const runMs = randomInt(30, 400);
    await sleep(runMs);
    await kill9(cloud!.proc);
    cloud = null;
    rounds.push({ runMs, ackedAtStart, ackedAtKill: await acked() });
    t.comment(`round ${round}: ${JSON.stringify(rounds.at(-1))}`);
    await startCloudChild();
  }
  t.comment(`rounds took ${Date.now() - t0} ms`);
  const cut = rounds.filter((r) => r.ackedAtKill < TOTAL).length;
  t.ok(cut >= ROUNDS - 1, `${cut} of ${ROUNDS} kills landed before the backlog was drained`);

  const t1 = Date.now();
  const final = await drained(gw.httpUrl, gw.adminToken, 30_000);
  t.comment(`drained in ${Date.now() - t1} ms`);
  t.equal(final.streams.telemetry.backlogRows, 0, 'gateway: telemetry backlog 0');
  t.equal(final.streams.telemetry.ackedSeq, TOTAL, `gateway: acked mark ${TOTAL}`);
  const r = await office<{ readings: CloudReadingRow[] }>(url, admin, `/api/v1/readings?gateway=gw-2&limit=100000`);
  t.equal(r.status, 200, 'cloud readings query');
  const rows = r.body.readings;
  t.same(seqReport(rows, TOTAL), { count: TOTAL, missing: [], duplicated: [], outside: [] }, `cloud: seq 1..${TOTAL}, each exactly once`);
  const wrong = rows
    .filter((x) => {
      const want = reading(x.seq - 1);
      return x.value !== want.value || x.device !== want.device || x.point !== want.point;
    })
    .slice(0, 20);
  t.same(wrong, [], 'cloud: every row carries what the gateway wrote under its seq');
  const info = (await office<GatewayInfoRow[]>(url, admin, '/api/v1/gateways')).body.find((x) => x.id === 'gw-2');
  t.equal(info?.streams.telemetry?.ackedSeq, TOTAL, 'cloud: its high-water mark for gw-2 is the last seq');
  t.comment(
    `cloud: ${info?.streams.telemetry?.batches} telemetry batches, ${info?.streams.telemetry?.duplicateBatches} of them retries of committed ones`,
  );

  await gw.stop();
  g = null;
  const last = cloud as Child | null;
  last?.proc.kill('SIGTERM');
  t.equal(last ? await exited(last.proc, 20_000) : 'no cloud', 0, 'the cloud exits 0 on SIGTERM');
  cloud = null;
});
