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
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import type { MqttDriver } from '../../drivers/mqtt/index.js';
import { parseConfig } from '../../gateway/config.js';
import { Gateway } from '../../gateway/gateway.js';
import { RuleEngine, type Fact } from '../../gateway/rules/engine.js';
import type { RuleConfig } from '../../gateway/rules/schema.js';
import type { OutpostEvent, Reading } from '../../gateway/types.js';
import { CpuProfile, type ProfileSummary } from './lib/cpu-profile.js';
import { connectClient, endClient } from './lib/publishers.js';
import { GcRecorder, MachineCpu, PersistRecorder, StallRecorder, attribute, spanStats, type Span, type SpanStats } from './lib/rules-diag.js';
import { RulesPeerChild, wallMs, type ClockOffset } from './lib/rules-peer-child.js';
import {
  ACT_POINT,
  DEVICES,
  DRAIN_MS,
  POINTS,
  PROBE_DEVICE,
  PROBE_RULES,
  Pacer,
  ReadingStream,
  RELAY_COIL,
  SAMPLE_EVERY_MS,
  SCENARIOS,
  TARGET_P99_MS,
  TIMEZONE,
  WARMUP_MS,
  buildRules,
  parseOptions,
  probeExpected,
  probePoint,
  siteConfig,
  sleep,
  type RulesOptions,
} from './lib/rules-setup.js';
import { bucketDelta, byLabel, histogram, histogramQuantile, parsePrometheus, percentile, round, summarize, total, type Sample } from './lib/stats.js';

/** Event-loop delay is sampled by a 1 ms timer; reported as the delay beyond it. */
const LOOP_RESOLUTION_MS = 1;

interface Ms {
  count: number;
  p50: number | null;
  /** Steadier than p99 when there are only a few hundred samples (p99 of 250 is the 3rd worst). */
  p90: number | null;
  p99: number | null;
  max: number | null;
}

function ms(samples: readonly number[]): Ms {
  const s = summarize(samples);
  const sorted = Float64Array.from(samples).sort();
  return { count: s.count, p50: round(s.p50, 3), p90: round(percentile(sorted, 90), 3), p99: round(s.p99, 3), max: round(s.max, 3) };
}

// ---- shared process measurements ----------------------------------------------------

class Sampler {
  private timer: NodeJS.Timeout | null = null;
  peakRss = 0;
  peakHeapUsed = 0;

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }

  private sample(): void {
    const m = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, m.heapUsed);
  }
}

interface ProcessUsage {
  /** This process, all threads (main thread, rule worker, DuckDB, the data publisher); 100 = one core. */
  cpuPercent: number;
  /** Share of the window the main thread was busy (event-loop utilisation). */
  mainThreadBusyPercent: number;
  /** How late a 1 ms timer ran on the main thread (beyond its 1 ms), from monitorEventLoopDelay. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Main-thread stalls (a 1 ms timer ≥ 3 ms late) and main-thread GC pauses in the window. */
  mainThreadStalls: SpanStats;
  mainThreadGc: SpanStats;
  /** Every process on the machine, and all but this one (and the peer, in workers); 100 = one core. */
  machineCpuPercent: number | null;
  otherProcessesCpuPercent: number | null;
  peakRssMB: number;
  peakHeapUsedMB: number;
}

/** One measurement window: CPU, event-loop utilisation and delay, stalls, GC, machine load. */
class Window {
  readonly from = wallMs();
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly elu0 = performance.eventLoopUtilization();
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private readonly machine = new MachineCpu();

  constructor(
    private readonly stalls: StallRecorder,
    private readonly gc: GcRecorder,
  ) {
    this.loop.enable();
  }

  close(sampler: Sampler, otherCpuSeconds = 0): { seconds: number; to: number; usage: ProcessUsage } {
    this.loop.disable();
    const to = wallMs();
    const seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const elu: EventLoopUtilization = performance.eventLoopUtilization(this.elu0);
    const machine = this.machine.percent();
    const own = (100 * ((cpu.user + cpu.system) / 1e6 + otherCpuSeconds)) / seconds;
    const beyond = (ns: number) => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS), 2)!;
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1)!;
    return {
      seconds,
      to,
      usage: {
        cpuPercent: round((100 * (cpu.user + cpu.system)) / 1e6 / seconds, 0)!,
        mainThreadBusyPercent: round(100 * elu.utilization, 0)!,
        eventLoopDelayMs: { p50: beyond(this.loop.percentile(50)), p99: beyond(this.loop.percentile(99)), max: beyond(this.loop.max) },
        mainThreadStalls: spanStats(this.stalls.spans, this.from, to),
        mainThreadGc: spanStats(this.gc.spans, this.from, to),
        machineCpuPercent: machine,
        otherProcessesCpuPercent: machine === null ? null : Math.max(0, Math.round(machine - own)),
        peakRssMB: mb(sampler.peakRss),
        peakHeapUsedMB: mb(sampler.peakHeapUsed),
      },
    };
  }
}

/** Sampler, stall and GC recorders of one scenario: started together, stopped together. */
class Instruments {
  readonly sampler = new Sampler();
  readonly stalls = new StallRecorder(2);
  readonly gc = new GcRecorder();

  start(): void {
    this.sampler.start();
    this.stalls.start();
    this.gc.start();
  }

  stop(): void {
    this.sampler.stop();
    this.stalls.stop();
    this.gc.stop();
  }

  window(): Window {
    return new Window(this.stalls, this.gc);
  }
}

// ---- workers: the gateway ------------------------------------------------------------

interface ProbeRecord {
  seq: number;
  /** Publish, by the peer (this clock, ms since the epoch, fractional). */
  pubAt: number;
  ingestAt?: number;
  firedAt?: number;
  writeAt?: number;
}

interface WorkersResult {
  name: 'workers';
  seconds: number;
  startSeconds: number;
  rules: number;
  series: number;
  readingsPublishedPerSec: number;
  /** Messages the pacer dropped from its schedule: it was more than 100 ms behind (a stall, or the MQTT socket wanting a drain). */
  messagesSkipped: number;
  readingsReceivedPerSec: number;
  readingsCommittedPerSec: number;
  /** Events committed to DuckDB (mostly one rule.fired per firing): store commits go on even when readings stop. */
  eventsCommittedPerSec: number;
  evaluationsPerSec: number;
  firingsPerSec: number;
  probeFiringsPerSec: number;
  actions: Record<string, number>;
  /** outpost_rules_batch_seconds: one observation per batch sent to the shards (ticks not included). */
  ruleBatches: { count: number; perSec: number; avgFacts: number | null; p50Ms: number | null; p99Ms: number | null; p99AtLeast: boolean; meanMs: number | null };
  rejects: { total: number; byReason: Record<string, number> };
  probes: { sent: number; ingested: number; fired: number; written: number; lost: number; writeValueMismatches: number };
  /** Probe publish → the Modbus write reaching the peer, ms (both stamped by the peer). */
  readingToWriteMs: Ms;
  /** The same, split: publish → gateway bus (MQTT, decode), bus → firing seen on the main thread (host batching, worker, engine), firing → peer (action, Modbus line, TCP). */
  segmentsMs: { mqttToBus: Ms; busToFiring: Ms; firingToPeer: Ms };
  /** Average of each segment over the slowest 1% of probes (at least one). */
  slowestOnePercentMs: { count: number; total: number | null; mqttToBus: number | null; busToFiring: number | null; firingToPeer: number | null };
  /** Probes slower than the target, by what their publish → write overlapped (one probe can count for several). */
  overTarget: { count: number; overlapped: Record<string, number> };
  /** The host's rule-state persists (snapshot of every shard + DuckDB write) in the window. */
  rulePersists: SpanStats;
  targetP99Ms: number;
  targetMet: boolean | null;
  clock: { offsetMs: number; rttMs: number; offsetDriftMs: number | null };
  usage: ProcessUsage;
  peerCpuPercent: number | null;
  startRssMB: number;
  /** With --profile: the main thread's sampled time during the window, by component. */
  profile?: ProfileSummary | null;
}

interface Hooks {
  ingestAt: Map<number, number>;
  /** Probe firings in the order the main thread saw them. */
  fired: Array<{ seq: number; at: number }>;
  detach(): void;
}

/** Probe readings reaching the bus and probe firings, seen here (probe value = seq + 1). */
function attachHooks(gw: Gateway): Hooks {
  const ingestAt = new Map<number, number>();
  const fired: Hooks['fired'] = [];
  // The gateway's own listeners were added at start, so these run right after them.
  const offReadings = gw.bus.on('readings', (readings: readonly Reading[]) => {
    const r = readings[0];
    if (r?.device === PROBE_DEVICE && typeof r.value === 'number') ingestAt.set(r.value - 1, wallMs());
  });
  const offEvent = gw.bus.on('event', (e: OutpostEvent) => {
    if (e.type !== 'rule.fired' || !e.subject?.startsWith('probe-')) return;
    const value = (e.data as { context?: { value?: unknown } } | undefined)?.context?.value;
    if (typeof value === 'number') fired.push({ seq: value - 1, at: wallMs() });
  });
  return {
    ingestAt,
    fired,
    detach() {
      offReadings();
      offEvent();
    },
  };
}

/**
 * Probe records from what the peer published and received and what the hooks saw. Writes
 * pair with probe firings one to one, in order (one Modbus line); a write whose value is
 * not what the firing asked for means a write went missing: that firing stays unpaired
 * and the write is tried against the next one.
 */
function probeRecords(hooks: Hooks, peer: RulesPeerChild): { records: Map<number, ProbeRecord>; mismatches: number } {
  const records = new Map<number, ProbeRecord>();
  for (const p of peer.probes()) records.set(p.seq, { seq: p.seq, pubAt: p.at });
  for (const [seq, at] of hooks.ingestAt) {
    const r = records.get(seq);
    if (r) r.ingestAt = at;
  }
  const writes = peer.writes().filter((w) => (w.fc === 5 || w.fc === 15) && w.address === RELAY_COIL);
  let j = 0;
  let mismatches = 0;
  for (const f of hooks.fired) {
    const r = records.get(f.seq);
    if (r) r.firedAt = f.at;
    if (j >= writes.length) continue;
    if (writes[j]!.value !== probeExpected(f.seq)) {
      mismatches++;
      continue;
    }
    if (r) r.writeAt = writes[j]!.at;
    j++;
  }
  return { records, mismatches };
}

interface Snapshot {
  samples: Sample[];
  peerCpu: number | null;
}

async function snapshot(gw: Gateway, peer: RulesPeerChild): Promise<Snapshot> {
  return { peerCpu: peer.cpuSeconds(), samples: parsePrometheus(await gw.metrics.registry.metrics()) };
}

function labelDelta(after: Sample[], before: Sample[], name: string, label: string): Record<string, number> {
  const prev = byLabel(before, name, label);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(byLabel(after, name, label))) {
    const d = v - (prev[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

interface WorkersRun {
  before: Snapshot;
  after: Snapshot;
  seconds: number;
  from: number;
  to: number;
  usage: ProcessUsage;
  sent: number;
  skipped: number;
  measured: ProbeRecord[];
  mismatches: number;
  stalls: readonly Span[];
  gc: readonly Span[];
  persists: readonly Span[];
  startSeconds: number;
  startRss: number;
  clock0: ClockOffset;
  clock1: ClockOffset;
}

async function runWorkers(opts: RulesOptions, rules: RuleConfig[], peer: RulesPeerChild, dirs: Set<string>): Promise<WorkersResult> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-rules-'));
  dirs.add(dir);
  let gw: Gateway | null = null;
  let hooks: Hooks | null = null;
  let persists: PersistRecorder | null = null;
  let data: MqttClient | null = null;
  let probing = false;
  const inst = new Instruments();
  let pacer: Pacer | null = null;
  let profile: CpuProfile | null = null;
  try {
    const clock0 = await peer.calibrate();
    const t0 = performance.now();
    const config = parseConfig(JSON.stringify(siteConfig(opts, peer.port, dir, rules)), 'bench-rules.yaml');
    gw = await Gateway.start({ config, log: pino({ level: 'silent' }) });
    const startSeconds = (performance.now() - t0) / 1000;
    const startRss = process.memoryUsage.rss();
    const mqttPort = (gw.supervisor.get('mqtt') as MqttDriver | undefined)?.ports?.tcp;
    if (!mqttPort) throw new Error('the gateway started without an MQTT listener');
    const client = await connectClient(mqttPort, `bench-rules-data-${process.pid}`);
    data = client;
    hooks = attachHooks(gw);
    persists = new PersistRecorder(gw.rules);

    const stream = new ReadingStream(opts);
    pacer = new Pacer(
      stream.messagesPerSec,
      (m) => {
        const { topic, payload } = stream.payload(m, Date.now());
        client.publish(topic, payload, { qos: 0 });
      },
      () => !client.stream.writableNeedDrain,
    );
    inst.start();
    pacer.start();
    probing = true;
    await peer.startProbes(mqttPort, opts.probeMs);
    await sleep(WARMUP_MS);

    if (opts.profile) profile = await CpuProfile.start();
    const before = await snapshot(gw, peer);
    const sentBefore = pacer.sent;
    const skippedBefore = pacer.skipped;
    const window = inst.window();
    await sleep(opts.seconds * 1000);
    const sent = pacer.sent - sentBefore;
    const skipped = pacer.skipped - skippedBefore;
    const after = await snapshot(gw, peer);
    const peerCpu = after.peerCpu !== null && before.peerCpu !== null ? after.peerCpu - before.peerCpu : 0;
    const { seconds, to, usage } = window.close(inst.sampler, peerCpu);
    const summary = (await profile?.stop()) ?? null;
    pacer.stop();
    await peer.stopProbes();
    probing = false;
    await sleep(DRAIN_MS); // the last probes' writes
    inst.stop();
    persists.restore();
    hooks.detach();
    const clock1 = await peer.calibrate();
    const { records, mismatches } = probeRecords(hooks, peer);
    const measured = [...records.values()].filter((p) => p.pubAt >= window.from && p.pubAt < to);
    const result = reportWorkers(opts, rules, {
      before,
      after,
      seconds,
      from: window.from,
      to,
      usage,
      sent,
      skipped,
      measured,
      mismatches,
      stalls: inst.stalls.spans,
      gc: inst.gc.spans,
      persists: persists.spans,
      startSeconds,
      startRss,
      clock0,
      clock1,
    });
    return opts.profile ? { ...result, profile: summary } : result;
  } finally {
    await profile?.stop().catch(() => null);
    pacer?.stop();
    if (probing) await peer.stopProbes();
    inst.stop();
    persists?.restore();
    hooks?.detach();
    if (data) await endClient(data);
    if (gw) await gw.stop('bench done');
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  }
}

function reportWorkers(opts: RulesOptions, rules: RuleConfig[], r: WorkersRun): WorkersResult {
  const { seconds } = r;
  const a = r.after.samples;
  const b = r.before.samples;
  const d = (name: string) => total(a, name) - total(b, name);
  const perSec = (n: number) => Math.round(n / seconds);
  const received = d('outpost_readings_received_total');
  const buckets = bucketDelta(histogram(a, 'outpost_rules_batch_seconds'), histogram(b, 'outpost_rules_batch_seconds'));
  const batches = d('outpost_rules_batch_seconds_count');
  const batchSum = d('outpost_rules_batch_seconds_sum');
  const p50 = histogramQuantile(0.5, buckets);
  const p99 = histogramQuantile(0.99, buckets);
  const sToMs = (s: number | null) => round(s === null ? null : s * 1000, 3);
  const firings = labelDelta(a, b, 'outpost_rules_firings_total', 'rule');
  const probeFirings = Object.entries(firings).filter(([k]) => k.startsWith('probe-')).reduce((n, [, v]) => n + v, 0);
  const actions: Record<string, number> = {};
  const prevActions = new Map(b.filter((s) => s.name === 'outpost_rules_actions_total').map((s) => [`${s.labels.kind}:${s.labels.result}`, s.value]));
  for (const s of a) {
    if (s.name !== 'outpost_rules_actions_total') continue;
    const key = `${s.labels.kind}:${s.labels.result}`;
    const n = s.value - (prevActions.get(key) ?? 0);
    if (n !== 0) actions[key] = n;
  }
  const rejectsByReason = labelDelta(a, b, 'outpost_rejects_total', 'reason');

  const done = r.measured.filter((p) => p.writeAt !== undefined);
  const total_ = (p: ProbeRecord) => p.writeAt! - p.pubAt;
  const seg = (from: keyof ProbeRecord, to: keyof ProbeRecord) =>
    r.measured.filter((p) => p[from] !== undefined && p[to] !== undefined).map((p) => (p[to] as number) - (p[from] as number));
  const slow = [...done].sort((x, y) => total_(y) - total_(x)).slice(0, Math.max(1, Math.ceil(done.length / 100)));
  const avg = (xs: number[]) => (xs.length ? round(xs.reduce((s, x) => s + x, 0) / xs.length, 3) : null);
  const full = slow.filter((p) => p.ingestAt !== undefined && p.firedAt !== undefined);
  const late = done.filter((p) => total_(p) > TARGET_P99_MS).map((p): Span => [p.pubAt, p.writeAt!]);
  const latency = ms(done.map(total_));
  const peerCpu = r.after.peerCpu === null || r.before.peerCpu === null ? null : r.after.peerCpu - r.before.peerCpu;
  const rejects = Object.values(rejectsByReason).reduce((x, y) => x + y, 0);
  return {
    name: 'workers',
    seconds: round(seconds, 3)!,
    startSeconds: round(r.startSeconds, 3)!,
    rules: rules.length,
    series: DEVICES * POINTS,
    readingsPublishedPerSec: perSec(r.sent * opts.batch),
    messagesSkipped: r.skipped,
    readingsReceivedPerSec: perSec(received),
    readingsCommittedPerSec: perSec(d('outpost_readings_committed_total')),
    eventsCommittedPerSec: perSec(d('outpost_events_committed_total')),
    evaluationsPerSec: perSec(d('outpost_rules_evaluations_total')),
    firingsPerSec: perSec(Object.values(firings).reduce((x, y) => x + y, 0)),
    probeFiringsPerSec: perSec(probeFirings),
    actions,
    ruleBatches: {
      count: batches,
      perSec: perSec(batches),
      avgFacts: batches > 0 ? round(received / batches, 1) : null,
      p50Ms: sToMs(p50.value),
      p99Ms: sToMs(p99.value),
      p99AtLeast: p99.capped,
      meanMs: batches > 0 ? sToMs(batchSum / batches) : null,
    },
    rejects: { total: rejects, byReason: rejectsByReason },
    probes: {
      sent: r.measured.length,
      ingested: r.measured.filter((p) => p.ingestAt !== undefined).length,
      fired: r.measured.filter((p) => p.firedAt !== undefined).length,
      written: done.length,
      lost: r.measured.length - done.length,
      writeValueMismatches: r.mismatches,
    },
    readingToWriteMs: latency,
    segmentsMs: { mqttToBus: ms(seg('pubAt', 'ingestAt')), busToFiring: ms(seg('ingestAt', 'firedAt')), firingToPeer: ms(seg('firedAt', 'writeAt')) },
    slowestOnePercentMs: {
      count: slow.length,
      total: avg(slow.map(total_)),
      mqttToBus: avg(full.map((p) => p.ingestAt! - p.pubAt)),
      busToFiring: avg(full.map((p) => p.firedAt! - p.ingestAt!)),
      firingToPeer: avg(full.map((p) => p.writeAt! - p.firedAt!)),
    },
    overTarget: { count: late.length, overlapped: attribute(late, { mainThreadStall: r.stalls, mainThreadGc: r.gc, rulePersist: r.persists }) },
    rulePersists: spanStats(r.persists, r.from - 60_000, r.to + 60_000 /* a persist overlapping the window's edge counts */),
    targetP99Ms: TARGET_P99_MS,
    targetMet: latency.p99 === null ? null : latency.p99 <= TARGET_P99_MS && done.length === r.measured.length,
    clock: { offsetMs: round(r.clock0.offsetMs, 3)!, rttMs: round(r.clock0.rttMs, 3)!, offsetDriftMs: round(r.clock1.offsetMs - r.clock0.offsetMs, 3) },
    usage: r.usage,
    peerCpuPercent: peerCpu === null ? null : round((100 * peerCpu) / seconds, 0),
    startRssMB: round(r.startRss / 2 ** 20, 1)!,
  };
}

// ---- inline: the engine on the main thread --------------------------------------------

interface InlineResult {
  name: 'inline';
  seconds: number;
  rules: number;
  readingsPerSec: number;
  messagesSkipped: number;
  evaluationsPerSec: number;
  firingsPerSec: number;
  /** engine.process() per message batch (--batch readings), ms. */
  batchMs: Ms;
  /** engine.process() of one probe reading (the inline reading → firing time, without queueing), ms. */
  probeMs: Ms;
  /** engine.tick() once a second, ms. */
  tickMs: Ms;
  /** Share of the window the main thread spent inside the engine. */
  engineBusyPercent: number;
  usage: ProcessUsage;
  profile?: ProfileSummary | null;
}

async function runInline(opts: RulesOptions, rules: RuleConfig[]): Promise<InlineResult> {
  const engine = new RuleEngine(rules, { timezone: TIMEZONE });
  const stream = new ReadingStream(opts);
  const inst = new Instruments();
  let measuring = false;
  const batchMs: number[] = [];
  const probeMs: number[] = [];
  const tickMs: number[] = [];
  let firings = 0;
  let busy = 0;
  const timed = (out: number[], run: () => number) => {
    const t = performance.now();
    const n = run();
    const dt = performance.now() - t;
    if (!measuring) return;
    out.push(dt);
    busy += dt;
    firings += n;
  };
  const pacer = new Pacer(stream.messagesPerSec, (m) => {
    const facts: Fact[] = stream.readings(m, Date.now()).map((reading) => ({ kind: 'reading', reading }));
    timed(batchMs, () => engine.process(facts).length);
  });
  let seq = 0;
  const sendProbe = () => {
    const s = seq++;
    const facts: Fact[] = [{ kind: 'reading', reading: { ts: Date.now(), device: PROBE_DEVICE, point: probePoint(s), value: s + 1 } }];
    timed(probeMs, () => engine.process(facts).length);
  };
  let probeTimer: NodeJS.Timeout | null = null;
  let tickTimer: NodeJS.Timeout | null = null;
  let profile: CpuProfile | null = null;
  try {
    inst.start();
    pacer.start();
    probeTimer = setInterval(sendProbe, opts.probeMs);
    tickTimer = setInterval(() => timed(tickMs, () => engine.tick(Date.now()).length), 1_000);
    await sleep(WARMUP_MS);
    if (opts.profile) profile = await CpuProfile.start();
    const evals0 = engine.stats().evaluations;
    const sent0 = pacer.sent;
    const skipped0 = pacer.skipped;
    measuring = true;
    const window = inst.window();
    await sleep(opts.seconds * 1000);
    const { seconds, usage } = window.close(inst.sampler);
    measuring = false;
    const evals = engine.stats().evaluations - evals0;
    const sent = pacer.sent - sent0;
    const skipped = pacer.skipped - skipped0;
    const summary = (await profile?.stop()) ?? null;
    const perSec = (n: number) => Math.round(n / seconds);
    return {
      name: 'inline',
      seconds: round(seconds, 3)!,
      rules: rules.length,
      readingsPerSec: perSec(sent * opts.batch),
      messagesSkipped: skipped,
      evaluationsPerSec: perSec(evals),
      firingsPerSec: perSec(firings),
      batchMs: ms(batchMs),
      probeMs: ms(probeMs),
      tickMs: ms(tickMs),
      engineBusyPercent: round((100 * busy) / (seconds * 1000), 1)!,
      usage,
      ...(opts.profile ? { profile: summary } : {}),
    };
  } finally {
    await profile?.stop().catch(() => null);
    pacer.stop();
    if (probeTimer) clearInterval(probeTimer);
    if (tickTimer) clearInterval(tickTimer);
    inst.stop();
  }
}

// ---- report ---------------------------------------------------------------------------

type ScenarioResult = WorkersResult | InlineResult;

function notes(w: WorkersResult | undefined, i: InlineResult | undefined, opts: RulesOptions): string[] {
  const out: string[] = [];
  if (w) {
    const p99 = w.readingToWriteMs.p99;
    if (p99 !== null) {
      const s = w.segmentsMs;
      out.push(
        `workers: reading->write p99 ${p99} ms ${p99 <= TARGET_P99_MS ? '<=' : '>'} the ${TARGET_P99_MS} ms target over ${w.readingToWriteMs.count} probes; ` +
          `p50 split MQTT->bus ${s.mqttToBus.p50} ms, bus->firing ${s.busToFiring.p50} ms, firing->peer ${s.firingToPeer.p50} ms; ` +
          `slowest 1%: MQTT->bus ${w.slowestOnePercentMs.mqttToBus} ms, bus->firing ${w.slowestOnePercentMs.busToFiring} ms, firing->peer ${w.slowestOnePercentMs.firingToPeer} ms`,
      );
    }
    if (w.overTarget.count > 0) {
      const o = w.overTarget.overlapped;
      out.push(
        `workers: ${w.overTarget.count} probes took more than ${TARGET_P99_MS} ms; of those ${o.mainThreadStall ?? 0} overlapped a main-thread stall >= 3 ms ` +
          `(${w.usage.mainThreadStalls.count} stalls, ${w.usage.mainThreadStalls.totalMs} ms in all, max ${w.usage.mainThreadStalls.maxMs} ms), ` +
          `${o.mainThreadGc ?? 0} a main-thread GC pause, ${o.rulePersist ?? 0} a rule-state persist (${w.rulePersists.count} persists, max ${w.rulePersists.maxMs} ms), ${o.none ?? 0} none of these`,
      );
    }
    if (w.ruleBatches.meanMs !== null && i?.batchMs.p50 !== null && i?.batchMs.p50 !== undefined) {
      out.push(
        `workers: a rule batch (avg ${w.ruleBatches.avgFacts} facts) takes ${w.ruleBatches.meanMs} ms on average from the main thread's point of view; ` +
          `the engine itself needs about ${i.batchMs.p50} ms for ${opts.batch} readings inline: the rest is the hand-off to and from the worker`,
      );
    }
    if (w.profile) {
      const busy = Object.entries(w.profile.byComponent).filter(([k]) => k !== 'idle').slice(0, 4);
      out.push(`workers: main thread by component (--profile): ${busy.map(([k, v]) => `${k} ${v}%`).join(', ')}; top: ${w.profile.topFunctions[0]?.fn ?? 'n/a'}`);
    }
    if (w.probes.lost > 0) out.push(`workers: ${w.probes.lost} of ${w.probes.sent} probes got no write at the peer (ingested ${w.probes.ingested}, fired ${w.probes.fired})`);
    if (w.rejects.total > 0) out.push(`workers: ${w.rejects.total} readings dropped ${JSON.stringify(w.rejects.byReason)}${w.rejects.byReason.rules_backlog ? ' (rules_backlog: the shards fell 50 000 facts behind)' : ''}`);
    if (w.messagesSkipped > 0) {
      out.push(`workers: the publisher fell more than 100 ms behind its schedule and skipped ${w.messagesSkipped} messages (${w.readingsPublishedPerSec} readings/s published for ${opts.rate} asked)`);
    }
    if (w.ruleBatches.p99AtLeast) out.push("workers: rule batch p99 is past the histogram's last bucket (250 ms): a lower bound");
    if (w.clock.rttMs > 1) out.push(`workers: the clock offset to the peer is only good to ±${round(w.clock.rttMs / 2, 2)} ms (ping round trip ${w.clock.rttMs} ms); it affects the split, not the total`);
  }
  if (i && i.messagesSkipped > 0) out.push(`inline: the main thread fell more than 100 ms behind and skipped ${i.messagesSkipped} messages`);
  if (i && w) {
    out.push(
      `inline: evaluating on the main thread would take ${i.engineBusyPercent}% of it (batch p99 ${i.batchMs.p99} ms, one probe p99 ${i.probeMs.p99} ms); ` +
        `workers: the main thread was ${w.usage.mainThreadBusyPercent}% busy with MQTT, ingest, the store and actions`,
    );
  }
  for (const s of [w, i]) {
    const other = s?.usage.otherProcessesCpuPercent;
    if (s && other !== null && other !== undefined && other >= 20) {
      out.push(`${s.name}: other processes on this machine used ${other}% CPU (100 = one core) during the window: timings are disturbed; rerun on a quiet machine`);
    }
  }
  out.push(
    "windows hold only the run's own readings (warm-up + seconds), not a full minute: a windowed condition scans its samples, and the rule state the host snapshots every 5 s grows with them",
  );
  if (cpus().length <= 2) out.push(`${cpus().length} CPU cores: the gateway main thread, the rule worker, DuckDB, the data publisher (same process) and the peer share them`);
  return out;
}

function summaryLine(w: WorkersResult | undefined, i: InlineResult | undefined, rssMB: number): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(2));
  const parts: string[] = [];
  if (w) {
    const lat = w.readingToWriteMs;
    const target = w.targetMet === null ? '' : w.targetMet ? ` (target p99 <= ${TARGET_P99_MS} ms met)` : ` (target p99 <= ${TARGET_P99_MS} ms missed)`;
    const dropped = w.rejects.total > 0 ? `, ${w.rejects.total} dropped` : '';
    const lost = w.probes.lost > 0 ? `, ${w.probes.lost} probes lost` : '';
    parts.push(
      `workers ${w.readingsReceivedPerSec} readings/s, ${w.rules} rules, ${w.evaluationsPerSec} evaluations/s, ` +
        `reading->write p50 ${f(lat.p50)} ms p99 ${f(lat.p99)} ms max ${f(lat.max)} ms${target}${dropped}${lost}, event-loop p99 ${f(w.usage.eventLoopDelayMs.p99)} ms`,
    );
  }
  if (i) {
    const head = w ? '' : `${i.readingsPerSec} readings/s, ${i.rules} rules, ${i.evaluationsPerSec} evaluations/s, `;
    parts.push(`inline ${head}batch p99 ${f(i.batchMs.p99)} ms, event-loop p99 ${f(i.usage.eventLoopDelayMs.p99)} ms`);
  }
  return `rules: ${parts.join('; ')}; RSS ${Math.round(rssMB)} MB`;
}

// ---- cleanup guard ------------------------------------------------------------------

/** Kills the peer and removes temp dirs if the bench is interrupted or exits early. */
function guard(peer: RulesPeerChild | null, dirs: Set<string>): () => void {
  const cleanup = () => {
    peer?.killNow();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('exit', cleanup);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

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
