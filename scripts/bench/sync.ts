// Sync bench: how fast the gateway drains a backlog to the cloud, and in how many bytes, against
// gzip JSON lines over the same path.
//
//   npm run bench -- sync [--readings 1000000] [--devices 1000] [--points 10] [--batch 50000] [--only parquet,jsonl] [--max-seconds 120]
//
// The backlog: devices × points (temperature, humidity, power, … battery; realistic ranges, slow
// sine + noise, 2 decimals), one reading per point per second, seq 1…N, written straight into the
// gateway's DuckDB file (lib/sync-setup.ts).
//   parquet  the product: the cloud API (startCloudServer) and the enrolled gateway (Gateway.start,
//            sync on, batchRows = --batch), each a child process; timed from the uploader's start
//            to its saved ack of seq N, then checked: no backlog, N rows synced, and the cloud's
//            table holds exactly the gateway's readings (count, distinct seq, min/max, a hash).
//   jsonl    the baseline: the same readings and batches (one in flight) as gzip'd JSON lines,
//            HMAC-signed, POSTed to a minimal receiver that appends to DuckDB; same end check.
// CPU (all threads, 100 = one core) and RSS (VmHWM) are per process; the gateway and the sender
// run with its 256 MB heap cap. wire.bodyBytes: the batch bodies (lib/sync-drain.ts, lib/sync-child.ts).
import { cpus } from 'node:os';
import { join } from 'node:path';
import { int, num, only, parseOptions } from './lib/cli.js';
import { Guard } from './lib/procs.js';
import { printReport, progress } from './lib/report.js';
import { round } from './lib/stats.js';
import { runJsonl, runParquet, type ScenarioResult } from './lib/sync-drain.js';
import { POINT_KINDS, backlogShape, fillBacklog } from './lib/sync-setup.js';

const SCENARIOS = ['parquet', 'jsonl'] as const;
/** The aims. */
const [AIM_PER_SEC, AIM_BYTES] = [200_000, 4];
const log = progress('sync');
const rate = (r: number) => (r >= 10_000 ? `${Math.round(r / 1000)}k/s` : `${(r / 1000).toFixed(1)}k/s`);
/** A batch stage's total time and its share of the drain window. */
const share = (ms: number | null, s: ScenarioResult) =>
  `${((ms ?? 0) / 1000).toFixed(2)} s (${Math.round((100 * (ms ?? 0)) / (s.seconds * 1000))}%)`;

function notes(scenarios: ScenarioResult[], readings: number): string[] {
  const out: string[] = [];
  const [p, j] = ['parquet', 'jsonl'].map((n) => scenarios.find((s) => s.name === n));
  for (const s of scenarios) {
    const prep = s.name === 'parquet' ? 'cutting batches' : 'reading rows, JSON lines and gzip';
    const [prepare, upload] = [share(s.batches.prepareMs.totalMs, s), share(s.batches.uploadMs.totalMs, s)];
    out.push(`${s.name}: the sender spent ${prepare} ${prep} and ${upload} in upload round trips (the receiver's work included)`);
    if (!s.complete)
      out.push(`${s.name}: INCOMPLETE: ${s.readings} of ${readings} readings acknowledged in time (${s.error ?? 'no error'})`);
    if (!s.verified.ok) out.push(`${s.name}: VERIFICATION FAILED: ${JSON.stringify(s.verified.checks)}`);
    const other = s.machine.otherProcessesCpuPercent ?? 0;
    if (other >= 25) out.push(`${s.name}: other processes used about ${other}% CPU during the window: the figures are disturbed`);
  }
  const meets = (ok: boolean) => (ok ? 'meets' : 'misses');
  if (p)
    out.push(
      `parquet ${meets(p.readingsPerSec >= AIM_PER_SEC)} the ≥ ${AIM_PER_SEC}/s aim, ${meets((p.wire.bytesPerReading ?? 99) <= AIM_BYTES)} the ≤ ${AIM_BYTES} B aim`,
    );
  if (p && j && j.readingsPerSec > 0 && j.wire.bytesPerReading && p.wire.bytesPerReading) {
    const [r, b] = [round(p.readingsPerSec / j.readingsPerSec, 1), round(j.wire.bytesPerReading / p.wire.bytesPerReading, 1)];
    out.push(
      `parquet vs jsonl: ${r}× the drain rate, ${b}× fewer wire bytes, CPU µs/reading ${p.sender.cpuMicrosPerReading} vs ${j.sender.cpuMicrosPerReading} (sender)`,
    );
  }
  out.push(`both sides share this machine's ${cpus().length} cores over loopback (in production: two machines and a network)`);
  return out;
}

function summaryLine(scenarios: ScenarioResult[]): string {
  const [p, j] = ['parquet', 'jsonl'].map((n) => scenarios.find((s) => s.name === n));
  const flags = (s: ScenarioResult) => (!s.complete ? ' INCOMPLETE' : '') + (!s.verified.ok ? ' UNVERIFIED' : '');
  const parts = [
    p &&
      `parquet ${p.readings} readings drained at ${rate(p.readingsPerSec)}, ${p.wire.bytesPerReading} B/reading (aim ≥${AIM_PER_SEC / 1000}k/s, ≤${AIM_BYTES} B)${flags(p)}`,
    j && `jsonl+gzip ${rate(j.readingsPerSec)}, ${j.wire.bytesPerReading} B/reading${flags(j)}`,
  ];
  const m = p ?? j;
  const [sender, receiver] = p ? ['gateway', 'cloud'] : ['jsonl sender', 'receiver'];
  if (m)
    parts.push(
      `${sender} CPU ${m.sender.cpuPercent}%, RSS ${Math.round(m.sender.peakRssMB ?? 0)} MB`,
      `${receiver} CPU ${m.receiver.cpuPercent}%, RSS ${Math.round(m.receiver.peakRssMB ?? 0)} MB`,
    );
  return `sync: ${parts.filter(Boolean).join('; ')}`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions('sync', args, {
    readings: int(1_000_000, 1, 20_000_000),
    devices: int(1_000, 1, 100_000),
    points: int(10, 1, POINT_KINDS.length),
    // sync.batchRows: the site schema allows up to 500000; below 100 the uploader would not shrink on 413.
    batch: int(50_000, 100, 500_000),
    only: only(SCENARIOS),
    maxSeconds: num(120, 1, 600), // Per scenario: past this the drain is reported as incomplete.
  });
  const guard = new Guard();
  const root = guard.tempDir('sync');
  const db = join(root, 'gateway', 'outpost.duckdb');
  const scenarios: ScenarioResult[] = [];
  try {
    log(`writing a backlog of ${opts.readings} readings (${opts.devices} devices × ${opts.points} points) into the gateway's DuckDB file…`);
    const backlog = await fillBacklog(db, opts);
    for (const name of opts.only ?? SCENARIOS) {
      log(`${name}: draining ${opts.readings} readings in batches of ${opts.batch}…`);
      const run = { opts, root, backlog, guard };
      scenarios.push(name === 'parquet' ? await runParquet(run, join(root, 'gateway')) : await runJsonl(run, db));
    }
    const shape = {
      ...backlogShape(opts, backlog.t0Ms),
      fillSeconds: round(backlog.seconds, 2),
      gatewayStoreBytesPerReading: round(backlog.storeBytes / opts.readings, 2),
    };
    printReport('sync', { options: opts, backlog: shape, scenarios, notes: notes(scenarios, opts.readings) }, summaryLine(scenarios));
  } finally {
    guard.release();
  }
}
