// Modbus polling bench: the real gateway in this process polls N Modbus TCP servers (one
// line = one TCP connection per device) served by a peer in a child process, with M
// consecutive uint16 holding registers per device, and commits every reading to DuckDB.
//
//   npm run bench -- modbus [--devices 20] [--points 100] [--seconds 5] [--poll-ms 10]
//                           [--peer fast|modbus-serial] [--only coalesced,uncoalesced] [--profile]
//
//   coalesced    default planner limits: ceil(M/125) requests per device per poll
//   uncoalesced  maxRegistersPerRequest: 1, i.e. one request per point per poll
//
//   --peer fast           (default) a minimal MBAP responder (lib/modbus-peer.ts)
//   --peer modbus-serial  modbus-serial's ServerTCP; it answers each request from a
//                         setTimeout(0), ≥ 1 ms, so uncoalesced then measures that delay
//   --profile             V8 CPU profile of the main thread per window (costs a little)
//
// Bounds: N ≤ 500, M ≤ 10000, N·M ≤ 100000 (a site config that large already takes
// seconds to validate), --seconds ≤ 120.
// Each scenario gets a fresh gateway and data dir; after a 1 s warm-up the counters are
// read, and read again S seconds later. points/s = readings committed per second (every
// point reports on every poll: report 'always'). The gateway cannot poll faster than
// N·M per poll interval (`ceilingPointsPerSec`): at that ceiling the bench measures the
// configuration, not the gateway, and more devices/points are needed to find the limit.
// CPU of this process (gateway + DuckDB threads) and of the peer, the main thread's busy
// share (event loop utilisation) and event-loop delay show where the time goes;
// --profile adds a sampled CPU profile of the main thread, summarised by component.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { pino } from 'pino';
import { parseConfig } from '../../config/site.js';
import { Gateway } from '../../gateway/gateway.js';
import { CpuProfile, type ProfileSummary } from './lib/cpu-profile.js';
import { guard } from './lib/guard.js';
import { ModbusPeerChild, type PeerStats } from './lib/modbus-peer-child.js';
import {
  CEILING_SHARE,
  MAX_REGISTERS,
  SAMPLE_EVERY_MS,
  SATURATED_CPU,
  SCENARIOS,
  STALL_MS,
  WARMUP_MS,
  parseOptions,
  requestsPerCycle,
  siteConfig,
  sleep,
  type ModbusOptions,
  type ScenarioName,
} from './lib/modbus-setup.js';
import { Sampler } from './lib/sampler.js';
import { bucketDelta, histogram, histogramQuantile, labelDelta, parsePrometheus, round, total, type Sample } from './lib/stats.js';
import { modbus } from '../../drivers/modbus/index.js';

// ---- measurement ------------------------------------------------------------------

interface Snapshot {
  at: number;
  samples: Sample[];
  cpu: NodeJS.CpuUsage;
  elu: EventLoopUtilization;
  peerCpu: number | null;
  peer: PeerStats | null;
}

async function snapshot(gw: Gateway, peer: ModbusPeerChild): Promise<Snapshot> {
  const at = performance.now();
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const peerCpu = peer.cpuSeconds();
  const samples = parsePrometheus(await gw.metrics.registry.metrics());
  return { at, cpu, elu, peerCpu, samples, peer: await peer.stats() };
}

/** Peak RSS and JS heap of this process and peak store queue, sampled while a gateway runs. */
class GatewaySampler extends Sampler {
  peakQueueRows = 0;

  constructor(private readonly gw: Gateway) {
    super(SAMPLE_EVERY_MS);
  }

  protected override sample(): void {
    super.sample();
    this.peakQueueRows = Math.max(this.peakQueueRows, this.gw.writer?.queuedRows ?? 0);
  }
}

interface ScenarioResult {
  name: ScenarioName;
  maxRegistersPerRequest: number;
  requestsPerDevicePerPoll: number;
  seconds: number;
  startSeconds: number;
  readingsCommitted: number;
  pointsPerSec: number;
  readingsReceivedPerSec: number;
  ceilingPointsPerSec: number;
  /** Share of the poll-interval ceiling reached; ≥ 0.9 means poll-limited. */
  ceilingShare: number;
  pollLimited: boolean;
  /** Average time between two readings of one point (pollMs at the ceiling). */
  effectivePollMs: number | null;
  requestsOk: number;
  requestsPerSec: number;
  ceilingRequestsPerSec: number;
  failedRequests: number;
  failedByResult: Record<string, number>;
  /** Seconds × lines ÷ requests: the round trip when lines never idle (uncoalesced), else about the poll period. */
  msPerRequestPerLine: number | null;
  peerRequestsPerSec: number | null;
  pollOverruns: number;
  /** Readings the store refused (queue_full: it fell behind), by reason. */
  rejects: Record<string, number>;
  readingsDroppedPerSec: number;
  devicesOffline: number;
  /** Queue → commit per ingest call (one per answered request), from outpost_commit_latency_seconds. */
  commitLatencyMs: { mean: number | null; p50: number | null; p99: number | null; p99AtLeast: boolean; observations: number };
  peakQueueRows: number;
  cpuPercent: { bench: number; benchMainThreadBusy: number; peer: number | null };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  peakRssMB: number;
  /** RSS right after the gateway started (DuckDB open, polling just begun). */
  startRssMB: number;
  /** Peak V8 heap in use; the rest of RSS is mostly DuckDB's native memory. */
  peakHeapUsedMB: number;
  /** With --profile: the main thread's sampled time during the window, by component. */
  profile?: ProfileSummary | null;
}

function delta(after: Sample[], before: Sample[], name: string): number {
  return total(after, name) - total(before, name);
}

function devicesOffline(gw: Gateway): number {
  const devices = gw.supervisor.instanceOf(modbus)?.health().devices ?? {};
  return Object.values(devices).filter((d) => d.online === false).length;
}

async function runScenario(name: ScenarioName, opts: ModbusOptions, peer: ModbusPeerChild, dirs: Set<string>): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-modbus-'));
  dirs.add(dir);
  let gw: Gateway | null = null;
  let sampler: GatewaySampler | null = null;
  let profile: CpuProfile | null = null;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  try {
    const t0 = performance.now();
    const config = parseConfig(JSON.stringify(siteConfig(opts, name, peer.ports, dir)), `bench-modbus-${name}.yaml`);
    gw = await Gateway.start({ config, log: pino({ level: 'silent' }) });
    const startSeconds = (performance.now() - t0) / 1000;
    const startRss = process.memoryUsage.rss();
    sampler = new GatewaySampler(gw);
    sampler.start();
    await sleep(WARMUP_MS);
    if (opts.profile) profile = await CpuProfile.start();
    const before = await snapshot(gw, peer);
    loopDelay.enable();
    await sleep(opts.seconds * 1000);
    const after = await snapshot(gw, peer);
    loopDelay.disable();
    const summary = (await profile?.stop()) ?? null;
    const offline = devicesOffline(gw);
    sampler.stop();
    const result = report(name, opts, before, after, { startSeconds, offline, startRss, sampler, loopDelay });
    return opts.profile ? { ...result, profile: summary } : result;
  } finally {
    await profile?.stop().catch(() => null);
    sampler?.stop();
    loopDelay.disable();
    if (gw) await gw.stop('bench done');
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  }
}

function report(
  name: ScenarioName,
  opts: ModbusOptions,
  before: Snapshot,
  after: Snapshot,
  extra: { startSeconds: number; offline: number; startRss: number; sampler: GatewaySampler; loopDelay: ReturnType<typeof monitorEventLoopDelay> },
): ScenarioResult {
  const seconds = (after.at - before.at) / 1000;
  const { samples: a } = after;
  const { samples: b } = before;
  const committed = delta(a, b, 'outpost_readings_committed_total');
  const received = delta(a, b, 'outpost_readings_received_total');
  const byResult = labelDelta(a, b, 'outpost_modbus_requests_total', 'result');
  const ok = byResult.ok ?? 0;
  const failedByResult = Object.fromEntries(Object.entries(byResult).filter(([k]) => k !== 'ok'));
  const failed = Object.values(failedByResult).reduce((x, y) => x + y, 0);
  const perCycle = requestsPerCycle(opts.points, name);
  const ceilingPoints = (opts.devices * opts.points * 1000) / opts.pollMs;
  const pointsPerSec = committed / seconds;
  const requestsPerSec = ok / seconds;
  const buckets = bucketDelta(histogram(a, 'outpost_commit_latency_seconds'), histogram(b, 'outpost_commit_latency_seconds'));
  const count = delta(a, b, 'outpost_commit_latency_seconds_count');
  const sum = delta(a, b, 'outpost_commit_latency_seconds_sum');
  const p50 = histogramQuantile(0.5, buckets);
  const p99 = histogramQuantile(0.99, buckets);
  const ms = (s: number | null) => round(s === null ? null : s * 1000, 2);
  const cpu = (after.cpu.user - before.cpu.user + after.cpu.system - before.cpu.system) / 1e6;
  const elu = performance.eventLoopUtilization(after.elu, before.elu);
  const peerCpu = after.peerCpu === null || before.peerCpu === null ? null : after.peerCpu - before.peerCpu;
  const peerRequests = after.peer && before.peer ? after.peer.requests - before.peer.requests : null;
  const rejects = labelDelta(a, b, 'outpost_rejects_total', 'reason');
  const ld = extra.loopDelay;
  const nsToMs = (ns: number) => round(ns / 1e6, 2)!;
  const mb = (bytes: number) => round(bytes / 2 ** 20, 1)!;
  return {
    name,
    maxRegistersPerRequest: name === 'uncoalesced' ? 1 : MAX_REGISTERS,
    requestsPerDevicePerPoll: perCycle,
    seconds: round(seconds, 3)!,
    startSeconds: round(extra.startSeconds, 3)!,
    readingsCommitted: committed,
    pointsPerSec: Math.round(pointsPerSec),
    readingsReceivedPerSec: Math.round(received / seconds),
    ceilingPointsPerSec: Math.round(ceilingPoints),
    ceilingShare: round(pointsPerSec / ceilingPoints, 3)!,
    pollLimited: pointsPerSec >= CEILING_SHARE * ceilingPoints,
    effectivePollMs: received > 0 ? round((opts.devices * opts.points * seconds * 1000) / received, 2) : null,
    requestsOk: ok,
    requestsPerSec: Math.round(requestsPerSec),
    ceilingRequestsPerSec: Math.round((opts.devices * perCycle * 1000) / opts.pollMs),
    failedRequests: failed,
    failedByResult,
    msPerRequestPerLine: ok > 0 ? round((opts.devices * seconds * 1000) / ok, 3) : null,
    peerRequestsPerSec: peerRequests === null ? null : Math.round(peerRequests / seconds),
    pollOverruns: delta(a, b, 'outpost_modbus_poll_overruns_total'),
    rejects,
    readingsDroppedPerSec: Math.round(Object.values(rejects).reduce((x, y) => x + y, 0) / seconds),
    devicesOffline: extra.offline,
    commitLatencyMs: {
      mean: count > 0 ? ms(sum / count) : null,
      p50: ms(p50.value),
      p99: ms(p99.value),
      p99AtLeast: p99.capped,
      observations: count,
    },
    peakQueueRows: extra.sampler.peakQueueRows,
    cpuPercent: {
      bench: round((100 * cpu) / seconds, 0)!,
      benchMainThreadBusy: round(100 * elu.utilization, 0)!,
      peer: peerCpu === null ? null : round((100 * peerCpu) / seconds, 0),
    },
    eventLoopDelayMs: { p50: nsToMs(ld.percentile(50)), p99: nsToMs(ld.percentile(99)), max: nsToMs(ld.max) },
    peakRssMB: mb(extra.sampler.peakRss),
    startRssMB: mb(extra.startRss),
    peakHeapUsedMB: mb(extra.sampler.peakHeapUsed),
  };
}

// ---- diagnosis ----------------------------------------------------------------------

function notes(scenarios: ScenarioResult[], opts: ModbusOptions): string[] {
  const out: string[] = [];
  for (const s of scenarios) {
    const where = `${s.name}:`;
    if (s.pollLimited) {
      out.push(
        `${where} ${s.pointsPerSec} points/s is ${Math.round(100 * s.ceilingShare)}% of the poll-interval ceiling ` +
          `(${opts.devices}×${opts.points} points every ${opts.pollMs} ms = ${s.ceilingPointsPerSec}/s): this measures the configuration; ` +
          'raise --devices/--points to find the gateway limit',
      );
    }
    if (s.cpuPercent.peer !== null && s.cpuPercent.peer >= SATURATED_CPU) {
      const hint = opts.peer === 'modbus-serial' ? '; try --peer fast' : '';
      out.push(`${where} the peer used ${s.cpuPercent.peer}% CPU (one core): it, not the gateway, may be the limit${hint}`);
    }
    if (s.cpuPercent.benchMainThreadBusy >= SATURATED_CPU) {
      const top = s.profile ? topComponents(s.profile) : 'run with --profile to see where';
      out.push(`${where} the gateway's main thread was busy ${s.cpuPercent.benchMainThreadBusy}% of the time: the gateway process is the limit (${top})`);
    }
    if (s.eventLoopDelayMs.max >= STALL_MS) {
      out.push(
        `${where} the main thread stalled for up to ${Math.round(s.eventLoopDelayMs.max)} ms at a time; polls due meanwhile fire late ` +
          `(effective poll ${s.effectivePollMs ?? 'n/a'} ms for ${opts.pollMs} ms configured)`,
      );
    }
    if (s.name === 'uncoalesced' && opts.peer === 'modbus-serial') {
      out.push(
        `${where} modbus-serial's ServerTCP answers each request from a setTimeout(0) (≥ 1 ms), so with one request in flight per line ` +
          `it caps every line near 1000 req/s whatever its CPU (here ${s.msPerRequestPerLine ?? 'n/a'} ms per request per line); --peer fast does not`,
      );
    }
    if (!s.pollLimited && s.pollOverruns > 0) {
      out.push(`${where} ${s.pollOverruns} polls were skipped (overruns): requests queued on the lines took longer than the poll interval`);
    }
    const dropped = Object.values(s.rejects).reduce((x, y) => x + y, 0);
    if (dropped > 0) out.push(`${where} ${dropped} readings dropped (${JSON.stringify(s.rejects)}): the store did not keep up`);
    if (s.failedRequests > 0) out.push(`${where} ${s.failedRequests} failed requests ${JSON.stringify(s.failedByResult)}`);
    if (s.devicesOffline > 0) out.push(`${where} ${s.devicesOffline} devices offline at the end`);
  }
  if (cpus().length <= 2) out.push(`${cpus().length} CPU cores: the gateway's main thread, DuckDB's threads and the peer share them`);
  return out;
}

function topComponents(p: ProfileSummary): string {
  const busy = Object.entries(p.byComponent).filter(([k]) => k !== 'idle').slice(0, 3);
  return `main thread: ${busy.map(([k, v]) => `${k} ${v}%`).join(', ')}`;
}

function summaryLine(scenarios: ScenarioResult[], opts: ModbusOptions, ratio: number | null): string {
  const c = scenarios.find((s) => s.name === 'coalesced');
  const u = scenarios.find((s) => s.name === 'uncoalesced');
  const parts: string[] = [];
  const flags = (s: ScenarioResult) =>
    (s.pollLimited ? ', at poll ceiling' : '') + (s.readingsDroppedPerSec > 0 ? `, ${s.readingsDroppedPerSec} dropped/s` : '');
  const usage = (s: ScenarioResult) => `, CPU ${s.cpuPercent.bench}%, RSS ${Math.round(s.peakRssMB)} MB`;
  if (c) parts.push(`coalesced ${c.pointsPerSec} points/s (${c.requestsPerSec} req/s${usage(c)}${flags(c)})`);
  if (u) parts.push(`uncoalesced ${u.pointsPerSec} points/s (${u.requestsPerSec} req/s${c ? '' : usage(u)}${flags(u)})`);
  const r = ratio === null ? '' : `, ${ratio.toFixed(1)}x`;
  return `modbus: ${parts.join(', ')}${r}; ${opts.devices} devices x ${opts.points} points, poll ${opts.pollMs} ms, peer ${opts.peer}`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const wanted = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s));
  process.stderr.write(`modbus: starting ${opts.devices} ${opts.peer} Modbus TCP servers in a child process…\n`);
  const peer = await ModbusPeerChild.start(opts.peer, opts.devices);
  const dirs = new Set<string>();
  const unguard = guard(peer, dirs);
  const scenarios: ScenarioResult[] = [];
  try {
    for (const name of wanted) {
      process.stderr.write(`modbus: ${name}: ${opts.devices}×${opts.points} points every ${opts.pollMs} ms, 1 s warm-up + ${opts.seconds} s…\n`);
      scenarios.push(await runScenario(name, opts, peer, dirs));
    }
  } finally {
    await peer.stop();
    unguard();
  }
  const c = scenarios.find((s) => s.name === 'coalesced');
  const u = scenarios.find((s) => s.name === 'uncoalesced');
  const ratio = c && u && u.pointsPerSec > 0 ? round(c.pointsPerSec / u.pointsPerSec, 2) : null;
  const result = {
    bench: 'modbus',
    options: {
      ...opts,
      warmupSeconds: WARMUP_MS / 1000,
      pointType: 'uint16 holding registers at consecutive addresses, report: always',
      lines: 'one TCP line per device (one request in flight per line), timeoutMs 1000, retries 1',
      memory: 'RSS is this whole process (gateway in-process, bench negligible); a later scenario starts with what the earlier left',
    },
    machine: { cpus: cpus().length, loadavg: loadavg().map((x) => round(x, 2)), node: process.version },
    peer: { kind: opts.peer, pid: peer.pid, exit: peer.exitStatus },
    scenarios,
    ratio: { value: ratio, definition: 'coalesced points/s ÷ uncoalesced points/s' },
    notes: notes(scenarios, opts),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(summaryLine(scenarios, opts, ratio));
}
