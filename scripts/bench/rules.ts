// Rules bench: reading → rule → Modbus write latency through the real gateway, and what the same
// rule evaluation would cost on the main thread.
//
//   npm run bench -- rules [--rules 1000] [--rate 10000] [--seconds 5] [--batch 100] [--probe-ms 20] [--only workers,inline]
//
//   workers  the product path: the gateway in this process (MQTT broker, DuckDB, rules in worker
//            shards) and a Modbus actuator `act` (coil `relay`) in a child process (lib/peer.ts).
//            An mqtt.js client publishes --rate readings/s (100 devices × 10 points, JSON arrays of
//            --batch readings, QoS0, paced). The peer publishes a probe every --probe-ms to
//            probe/t<k>; rule probe-k writes act/relay = (k even), so every probe yields exactly one
//            write. Latency = the probe's publish → its write's arrival, both stamped by the peer.
//   inline   the baseline: the same rules in `new RuleEngine()` on this main thread, fed the same
//            readings, probes and a tick a second: the cost the workers take off the main thread.
// The other N − 10 rules (four kinds, lib/rules-setup.ts) follow an 8 s sine, so they keep firing.
// Each scenario warms up 1 s, then measures --seconds.
import { cpus } from 'node:os';
import { UsageError, int, num, only, parseOptions, type Options } from './lib/cli.js';
import { Guard } from './lib/procs.js';
import { printReport, progress } from './lib/report.js';
import { RulesPeer, TARGET_P99_MS, WARMUP_MS, runInline, runWorkers } from './lib/rules-run.js';
import { ACT_POINT, DEVICES, POINTS, PROBE_DEVICE, PROBE_RULES, buildRules } from './lib/rules-setup.js';

const SCENARIOS = ['workers', 'inline'] as const;
const SPEC = {
  rules: int(1_000, PROBE_RULES + 1, 20_000),
  rate: num(10_000, 10, 200_000),
  seconds: num(5, 0.5, 60, 'BENCH_SECONDS'),
  batch: int(100, POINTS, 2000),
  probeMs: int(20, 5, 1_000),
  only: only(SCENARIOS),
};
type RulesOptions = Options<typeof SPEC>;
type Workers = Awaited<ReturnType<typeof runWorkers>>;
type Inline = Awaited<ReturnType<typeof runInline>>;
const log = progress('rules');

function notes(w: Workers | undefined, i: Inline | undefined, opts: RulesOptions): string[] {
  const out: string[] = [];
  if (w) {
    const [lat, p] = [w.readingToWriteMs, w.probes];
    out.push(
      `workers: reading->write p99 ${lat.p99} ms ${w.targetMet ? 'meets' : 'misses'} the ${TARGET_P99_MS} ms target (${lat.count} probes)`,
    );
    if (p.lost > 0) out.push(`workers: ${p.lost} of ${p.sent} probes got no write at the peer (${p.fired} fired)`);
    if (w.rejects.total > 0) out.push(`workers: ${w.rejects.total} readings dropped ${JSON.stringify(w.rejects.byReason)}`);
    if (w.messagesSkipped > 0) out.push(`workers: the publisher fell behind and skipped ${w.messagesSkipped} messages (of ${opts.rate}/s)`);
  }
  if (i && i.messagesSkipped > 0) out.push(`inline: the main thread fell behind and skipped ${i.messagesSkipped} messages`);
  if (i && w) {
    const busy = `${i.engineBusyPercent}% of the main thread (batch p99 ${i.batchMs.p99} ms)`;
    out.push(
      `inline: evaluating there would take ${busy}; workers: it was ${w.usage.mainThreadBusyPercent}% busy with MQTT, store and actions`,
    );
  }
  for (const s of [w, i]) {
    const other = s?.usage.otherProcessesCpuPercent ?? 0;
    if (s && other >= 20) out.push(`${s.name}: other processes used ${other}% CPU (100 = one core) in the window: timings are disturbed`);
  }
  if (cpus().length <= 2)
    out.push(`${cpus().length} CPU cores: the gateway, its rule worker, DuckDB, the publisher and the peer share them`);
  return out;
}

function summaryLine(w: Workers | undefined, i: Inline | undefined): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(2));
  const parts: string[] = [];
  if (w) {
    const lat = w.readingToWriteMs;
    const target = w.targetMet === null ? '' : ` (target p99 <= ${TARGET_P99_MS} ms ${w.targetMet ? 'met' : 'missed'})`;
    const lost = (w.rejects.total > 0 ? `, ${w.rejects.total} dropped` : '') + (w.probes.lost > 0 ? `, ${w.probes.lost} probes lost` : '');
    parts.push(
      `workers ${w.readingsReceivedPerSec} readings/s, ${w.rules} rules, ${w.evaluationsPerSec} evaluations/s, ` +
        `reading->write p50 ${f(lat.p50)} ms p99 ${f(lat.p99)} ms max ${f(lat.max)} ms${target}${lost}, event-loop p99 ${f(w.usage.eventLoopDelayMs.p99)} ms`,
    );
  }
  if (i) {
    const head = w ? '' : `${i.readingsPerSec} readings/s, ${i.rules} rules, ${i.evaluationsPerSec} evaluations/s, `;
    parts.push(`inline ${head}batch p99 ${f(i.batchMs.p99)} ms, event-loop p99 ${f(i.usage.eventLoopDelayMs.p99)} ms`);
  }
  return `rules: ${parts.join('; ')}; RSS ${Math.round(Math.max(w?.usage.peakRssMB ?? 0, i?.usage.peakRssMB ?? 0))} MB`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions('rules', args, SPEC);
  if (opts.batch % POINTS !== 0)
    throw new UsageError(`--batch must be a multiple of ${POINTS} (rows of ${POINTS} points), got ${opts.batch}`);
  // One message per device per cycle: the rows of one message must fit between two of them.
  if (opts.rate / opts.batch > 2_000)
    throw new UsageError(`--rate / --batch must be at most 2000 messages/s, got ${opts.rate / opts.batch}`);
  const wanted = opts.only ?? SCENARIOS;
  const rules = buildRules(opts.rules);
  const guard = new Guard();
  let peer: RulesPeer | null = null;
  let w: Workers | undefined;
  let i: Inline | undefined;
  try {
    if (wanted.includes('workers')) {
      log('starting the Modbus actuator peer in a child process…');
      peer = await RulesPeer.start(guard);
    }
    for (const name of wanted) {
      log(`${name}: ${opts.rules} rules, ${opts.rate} readings/s in batches of ${opts.batch}, 1 s warm-up + ${opts.seconds} s…`);
      if (name === 'workers') w = await runWorkers(opts, rules, peer!, guard);
      else i = await runInline(opts, rules);
    }
  } finally {
    await peer?.child.stop(3_000);
    guard.release();
  }
  const options = {
    ...opts,
    warmupSeconds: WARMUP_MS / 1000,
    stream: `${DEVICES} devices × ${POINTS} points, ${opts.batch / POINTS} rows of all points per message (QoS0), ${opts.rate / opts.batch} messages/s`,
    probes: `one reading every ${opts.probeMs} ms to ${PROBE_DEVICE}/t0…t${PROBE_RULES - 1}; rule probe-k writes act/${ACT_POINT} = k even`,
  };
  const scenarios = wanted.map((name) => (name === 'workers' ? w : i));
  printReport(
    'rules',
    { options, peer: peer && { pid: peer.child.pid, exit: peer.child.exit }, scenarios, notes: notes(w, i, opts) },
    summaryLine(w, i),
  );
}
