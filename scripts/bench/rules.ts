// Rules bench: reading → rule → Modbus write latency through the real gateway, and what
// the same rule evaluation would cost on the main thread.
//
//   npm run bench -- rules [--rules 1000] [--rate 10000] [--seconds 5] [--batch 100]
//                          [--probe-ms 20] [--only workers,inline] [--profile]
//
//   workers  the product path: the gateway in this process (MQTT broker on a free loopback
//            port, DuckDB, rules in its Piscina worker shards), a Modbus TCP actuator `act`
//            (coil `relay`) served by a child process (lib/rules-peer.ts), and N rules. An
//            mqtt.js client publishes --rate readings/s from 100 devices s-000…s-099 ×
//            points p0…p9 as JSON arrays of --batch readings (QoS0, paced). The peer child
//            also publishes one probe reading every --probe-ms to probe/t<k> (k cycling
//            0…9) from its own, otherwise idle, event loop. Rule probe-k (no `if`, no
//            cooldown) fires on every probe/t<k> reading and writes act/relay = (k even),
//            so consecutive probes alternate true/false and every probe yields exactly one
//            Modbus write. Latency = the probe's publish → the write's arrival, both
//            stamped by the peer on its own clock. Split at two moments seen on the
//            gateway's bus in this process (moved to the peer's clock by a ping-measured
//            offset): the reading reaching the bus (ingest), and the firing (its
//            `rule.fired` event, emitted just before the action runs). Probes slower than
//            the 5 ms target are set against main-thread stalls, GC pauses and rule-state
//            persists (lib/rules-diag.ts).
//   inline   no gateway: the same rules in `new RuleEngine()` on this main thread, fed
//            the same readings at the same rate and batch size (plus the probes, and a
//            tick a second as the host does): the cost the workers take off the main thread.
//
// The other N − 10 rules each exact-trigger on one series, in four kinds (a windowed
// avg 1m + value with hysteresis; avg 2s with `for`; value + time of day with cooldown;
// min 1s with `for`, clear and cooldown) over readings following an 8 s sine, so they keep
// firing (each firing publishes an MQTT message, and records a rule.fired event).
// Every scenario warms up 1 s, then measures --seconds; windows only hold what the run
// sent (≤ warm-up + seconds), not a full minute. --profile adds a sampled V8 CPU profile
// of the main thread per window, summarised by component (it costs a little).
// The scenarios live in lib/rules-workers.ts and lib/rules-inline.ts, their shared process
// measurements in lib/rules-measure.ts, the result shapes, notes and summary in lib/rules-report.ts.
import { cpus, loadavg } from 'node:os';
import { guard } from './lib/guard.js';
import { runInline } from './lib/rules-inline.js';
import { RulesPeerChild } from './lib/rules-peer-child.js';
import { notes, summaryLine, type InlineResult, type ScenarioResult, type WorkersResult } from './lib/rules-report.js';
import { ACT_POINT, DEVICES, POINTS, PROBE_DEVICE, PROBE_RULES, RELAY_COIL, SCENARIOS, WARMUP_MS, buildRules, parseOptions } from './lib/rules-setup.js';
import { runWorkers } from './lib/rules-workers.js';
import { round } from './lib/stats.js';

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const wanted = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s));
  const rules = buildRules(opts.rules);
  const dirs = new Set<string>();
  let peer: RulesPeerChild | null = null;
  const scenarios: ScenarioResult[] = [];
  if (wanted.includes('workers')) {
    process.stderr.write('rules: starting the Modbus actuator peer in a child process…\n');
    peer = await RulesPeerChild.start();
  }
  const unguard = guard(peer, dirs);
  try {
    for (const name of wanted) {
      process.stderr.write(`rules: ${name}: ${opts.rules} rules, ${opts.rate} readings/s in batches of ${opts.batch}, 1 s warm-up + ${opts.seconds} s…\n`);
      scenarios.push(name === 'workers' ? await runWorkers(opts, rules, peer!, dirs) : await runInline(opts, rules));
    }
  } finally {
    await peer?.stop();
    unguard();
  }
  const w = scenarios.find((s): s is WorkersResult => s.name === 'workers');
  const i = scenarios.find((s): s is InlineResult => s.name === 'inline');
  const rss = Math.max(...scenarios.map((s) => s.usage.peakRssMB));
  const result = {
    bench: 'rules',
    options: {
      ...opts,
      warmupSeconds: WARMUP_MS / 1000,
      stream: `${DEVICES} devices × ${POINTS} points; one MQTT message = one device, ${opts.batch / POINTS} rows × ${POINTS} points (JSON array, QoS0); ${opts.rate / opts.batch} messages/s`,
      probes: `one reading every ${opts.probeMs} ms to ${PROBE_DEVICE}/t0…t${PROBE_RULES - 1}; rule probe-k writes act/${ACT_POINT} (coil ${RELAY_COIL}) = k even`,
      ruleSet: `${opts.rules - PROBE_RULES} load rules (exact device/point triggers, windowed avg/min conditions, for, clear, cooldown, time of day; action: MQTT publish) + ${PROBE_RULES} probe rules (action: Modbus write)`,
      memory: 'RSS is this whole process (gateway, rule worker, DuckDB, publishers); a later scenario starts with what the earlier left',
    },
    machine: { cpus: cpus().length, loadavg: loadavg().map((x) => round(x, 2)), node: process.version },
    peer: peer ? { pid: peer.pid, exit: peer.exitStatus } : null,
    scenarios,
    notes: notes(w, i, opts),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(summaryLine(w, i, rss));
}
