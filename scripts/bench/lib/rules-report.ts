// Rules bench results: the scenarios' result shapes, the workers result from metrics and probes, notes and the summary line.
import { cpus } from 'node:os';
import type { RuleConfig } from '../../../config/rules-schema.js';
import type { ProfileSummary } from './cpu-profile.js';
import { attribute, spanStats, type Span, type SpanStats } from './rules-diag.js';
import { ms, type Ms, type ProcessUsage } from './rules-measure.js';
import type { ClockOffset } from './rules-peer-child.js';
import { DEVICES, POINTS, TARGET_P99_MS, type RulesOptions } from './rules-setup.js';
import { bucketDelta, histogram, histogramQuantile, labelDelta, round, total, type Sample } from './stats.js';

// ---- workers ----------------------------------------------------------------------------

export interface ProbeRecord {
  seq: number;
  /** Publish, by the peer (this clock, ms since the epoch, fractional). */
  pubAt: number;
  ingestAt?: number;
  firedAt?: number;
  writeAt?: number;
}

export interface WorkersResult {
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

export interface Snapshot {
  samples: Sample[];
  peerCpu: number | null;
}

export interface WorkersRun {
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

export function reportWorkers(opts: RulesOptions, rules: RuleConfig[], r: WorkersRun): WorkersResult {
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

// ---- inline ----------------------------------------------------------------------------

export interface InlineResult {
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

// ---- notes and summary ------------------------------------------------------------------

export type ScenarioResult = WorkersResult | InlineResult;

export function notes(w: WorkersResult | undefined, i: InlineResult | undefined, opts: RulesOptions): string[] {
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

export function summaryLine(w: WorkersResult | undefined, i: InlineResult | undefined, rssMB: number): string {
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
