// Modbus polling bench: the real gateway in this process polls N Modbus TCP devices (one line =
// one TCP connection each, M consecutive uint16 holding registers each, report: always) served
// by a peer child process (lib/peer.ts), and commits every reading to DuckDB.
//
//   npm run bench -- modbus [--devices 20] [--points 100] [--seconds 5] [--poll-ms 10] [--only coalesced,uncoalesced]
//
//   coalesced    default planner limits: ceil(M/125) requests per device per poll
//   uncoalesced  the baseline: maxRegistersPerRequest 1, one request per point per poll
//
// Each scenario: a fresh gateway, 1 s warm-up, then S seconds between two counter reads. points/s =
// readings committed per second; at ceilingPointsPerSec (N·M per poll) it measures the config.
import { cpus } from 'node:os';
import { UsageError, int, num, only, parseOptions, type Options } from './lib/cli.js';
import { Child, Guard, LOOPBACK, freePorts, libScript } from './lib/procs.js';
import { printReport, progress, sleep } from './lib/report.js';
import { Peaks, UsageWindow } from './lib/sampling.js';
import { benchSite, startGateway } from './lib/site.js';
import { MetricsDelta, mb, parsePrometheus, round, sum } from './lib/stats.js';

const SCENARIOS = ['coalesced', 'uncoalesced'] as const;
const SPEC = {
  devices: int(20, 1, 500),
  points: int(100, 1, 10_000),
  seconds: num(5, 0.5, 120, 'BENCH_SECONDS'),
  pollMs: int(10, 10, 60_000), // the driver's schema minimum is 10 ms
  only: only(SCENARIOS),
};
type ModbusOptions = Options<typeof SPEC>;
const WARMUP_MS = 1_000;
/** The protocol's (and the driver's default) most registers per read request. */
const MAX_REGISTERS = 125;
const log = progress('modbus');

function siteConfig(opts: ModbusOptions, uncoalesced: boolean, ports: readonly number[], dataDir: string): Record<string, unknown> {
  const pad = (i: number, n: number) => String(i).padStart(String(n - 1).length, '0');
  const lines = ports.map((port, i) => ({
    id: `line-${pad(i, opts.devices)}`,
    transport: 'tcp',
    host: LOOPBACK,
    port,
    timeoutMs: 1000,
    retries: 1,
  }));
  const points = Array.from({ length: opts.points }, (_, a) => ({
    name: `r${pad(a, opts.points)}`,
    table: 'holding',
    address: a,
    type: 'uint16',
  }));
  const modbus = { pollMs: opts.pollMs, ...(uncoalesced ? { maxRegistersPerRequest: 1 } : {}), points };
  const devices = lines.map((line, i) => ({
    id: `meter-${pad(i, opts.devices)}`,
    zone: 'bench',
    modbus: { line: line.id, unit: 1, ...modbus },
  }));
  return benchSite(dataDir, { drivers: { modbus: { enabled: true, lines } }, devices });
}

async function runScenario(name: (typeof SCENARIOS)[number], opts: ModbusOptions, peer: Child, ports: number[], guard: Guard) {
  const dir = guard.tempDir('modbus');
  let queueRows = 0;
  const { gw, startSeconds } = await startGateway(siteConfig(opts, name === 'uncoalesced', ports, dir), `bench-modbus-${name}.yaml`);
  const peaks = new Peaks(250, [], () => (queueRows = Math.max(queueRows, gw.writer?.queuedRows ?? 0)));
  const snapshot = async () => {
    const [peerCpu, samples] = [peer.cpuSeconds(), parsePrometheus(await gw.metrics.registry.metrics())];
    const stats = await peer.ask('stats', 'stats', 2_000).catch(() => null);
    return { peerCpu, samples, peerRequests: stats === null ? null : (JSON.parse(stats) as { requests: number }).requests };
  };
  try {
    const startRss = process.memoryUsage.rss();
    peaks.start();
    await sleep(WARMUP_MS);
    const window = new UsageWindow({ resolutionMs: 10, beyond: false });
    const before = await snapshot();
    await sleep(opts.seconds * 1000);
    const usage = window.close();
    const after = await snapshot();
    peaks.stop();
    const { seconds } = usage;
    const d = new MetricsDelta(after.samples, before.samples);
    const [committed, received] = [d.total('outpost_readings_committed_total'), d.total('outpost_readings_received_total')];
    const { ok = 0, ...failedByResult } = d.byLabel('outpost_modbus_requests_total', 'result');
    const perPoll = name === 'uncoalesced' ? opts.points : Math.ceil(opts.points / MAX_REGISTERS);
    const [ceiling, pointsPerSec] = [(opts.devices * opts.points * 1000) / opts.pollMs, committed / seconds];
    const ms = (s: number | null) => round(s === null ? null : s * 1000, 2);
    const [count, p99] = [d.total('outpost_commit_latency_seconds_count'), d.quantile('outpost_commit_latency_seconds', 0.99)];
    const peerCpu = after.peerCpu === null || before.peerCpu === null ? null : after.peerCpu - before.peerCpu;
    const peerRequests = after.peerRequests === null || before.peerRequests === null ? null : after.peerRequests - before.peerRequests;
    const rejects = d.byLabel('outpost_rejects_total', 'reason');
    // ceilingShare ≥ 0.9: poll-limited. effectivePollMs: the average time between two readings of a point.
    // msPerRequestPerLine: seconds × lines ÷ requests, the round trip when lines never idle (uncoalesced).
    // rejects: readings the store refused (queue_full: it fell behind). commitLatencyMs: queue → commit per ingest call.
    return {
      name,
      maxRegistersPerRequest: name === 'uncoalesced' ? 1 : MAX_REGISTERS,
      requestsPerDevicePerPoll: perPoll,
      seconds: round(seconds, 3)!,
      startSeconds: round(startSeconds, 3)!,
      readingsCommitted: committed,
      pointsPerSec: Math.round(pointsPerSec),
      readingsReceivedPerSec: Math.round(received / seconds),
      ceilingPointsPerSec: Math.round(ceiling),
      ceilingShare: round(pointsPerSec / ceiling, 3)!,
      pollLimited: pointsPerSec >= 0.9 * ceiling,
      effectivePollMs: received > 0 ? round((opts.devices * opts.points * seconds * 1000) / received, 2) : null,
      requestsOk: ok,
      requestsPerSec: Math.round(ok / seconds),
      ceilingRequestsPerSec: Math.round((opts.devices * perPoll * 1000) / opts.pollMs),
      failedRequests: sum(Object.values(failedByResult)),
      failedByResult,
      msPerRequestPerLine: ok > 0 ? round((opts.devices * seconds * 1000) / ok, 3) : null,
      peerRequestsPerSec: peerRequests === null ? null : Math.round(peerRequests / seconds),
      pollOverruns: d.total('outpost_modbus_poll_overruns_total'),
      rejects,
      readingsDroppedPerSec: Math.round(sum(Object.values(rejects)) / seconds),
      commitLatencyMs: {
        mean: count > 0 ? ms(d.total('outpost_commit_latency_seconds_sum') / count) : null,
        p50: ms(d.quantile('outpost_commit_latency_seconds', 0.5).value),
        p99: ms(p99.value),
        p99AtLeast: p99.capped,
        observations: count,
      },
      peakQueueRows: queueRows,
      cpuPercent: {
        bench: usage.cpuPercent,
        benchMainThreadBusy: usage.mainThreadBusyPercent,
        peer: peerCpu === null ? null : round((100 * peerCpu) / seconds, 0),
      },
      eventLoopDelayMs: usage.eventLoopDelayMs!,
      peakRssMB: mb(peaks.rss)!,
      startRssMB: mb(startRss)!,
      peakHeapUsedMB: mb(peaks.heapUsed)!,
    };
  } finally {
    peaks.stop();
    await gw.stop('bench done');
    guard.removeDir(dir);
  }
}
type ScenarioResult = Awaited<ReturnType<typeof runScenario>>;

function notes(scenarios: ScenarioResult[], opts: ModbusOptions): string[] {
  const out: string[] = [];
  for (const s of scenarios) {
    const note = (when: boolean, text: string) => when && out.push(`${s.name}: ${text}`);
    const ceiling = `${opts.devices}×${opts.points} points every ${opts.pollMs} ms = ${s.ceilingPointsPerSec}/s`;
    note(s.pollLimited, `${Math.round(100 * s.ceilingShare)}% of the poll ceiling (${ceiling}): this measures the configuration`);
    note((s.cpuPercent.peer ?? 0) >= 90, `the peer used ${s.cpuPercent.peer}% CPU (one core): it, not the gateway, may be the limit`);
    note(
      s.cpuPercent.benchMainThreadBusy >= 90,
      `the gateway's main thread was ${s.cpuPercent.benchMainThreadBusy}% busy: it is the limit`,
    );
    note(s.eventLoopDelayMs.max >= 50, `the main thread stalled for up to ${Math.round(s.eventLoopDelayMs.max)} ms; polls due fire late`);
    note(!s.pollLimited && s.pollOverruns > 0, `${s.pollOverruns} polls skipped (overruns): queued requests outlasted the poll interval`);
    note(s.readingsDroppedPerSec > 0, `readings dropped ${JSON.stringify(s.rejects)}: the store did not keep up`);
    note(s.failedRequests > 0, `${s.failedRequests} failed requests ${JSON.stringify(s.failedByResult)}`);
  }
  if (cpus().length <= 2) out.push(`${cpus().length} CPU cores: the gateway's main thread, DuckDB's threads and the peer share them`);
  return out;
}

function summaryLine(scenarios: ScenarioResult[], opts: ModbusOptions, ratio: number | null): string {
  const flags = (s: ScenarioResult) =>
    (s.pollLimited ? ', at poll ceiling' : '') + (s.readingsDroppedPerSec > 0 ? `, ${s.readingsDroppedPerSec} dropped/s` : '');
  const parts = scenarios.map((s, i) => {
    const usage = i === 0 ? `, CPU ${s.cpuPercent.bench}%, RSS ${Math.round(s.peakRssMB)} MB` : '';
    return `${s.name} ${s.pointsPerSec} points/s (${s.requestsPerSec} req/s${usage}${flags(s)})`;
  });
  return `modbus: ${parts.join(', ')}${ratio === null ? '' : `, ${ratio.toFixed(1)}x`}; ${opts.devices} devices x ${opts.points} points, poll ${opts.pollMs} ms, peer fast`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions('modbus', args, SPEC);
  if (opts.devices * opts.points > 100_000)
    throw new UsageError('--devices × --points must be at most 100000 (a config that large takes seconds to validate)');
  const guard = new Guard();
  const scenarios: ScenarioResult[] = [];
  log(`starting ${opts.devices} Modbus TCP servers in a child process…`);
  const ports = await freePorts(opts.devices);
  const peer = new Child('Modbus peer', [libScript('peer'), 'poll', ...ports.map(String)]);
  guard.children.add(peer);
  try {
    await peer.waitFor('ready');
    for (const name of opts.only ?? SCENARIOS) {
      log(`${name}: ${opts.devices}×${opts.points} points every ${opts.pollMs} ms, 1 s warm-up + ${opts.seconds} s…`);
      scenarios.push(await runScenario(name, opts, peer, ports, guard));
    }
  } finally {
    await peer.stop(3_000);
    guard.release();
  }
  const [c, u] = SCENARIOS.map((n) => scenarios.find((s) => s.name === n));
  const ratio = c && u && u.pointsPerSec > 0 ? round(c.pointsPerSec / u.pointsPerSec, 2) : null;
  const options = {
    ...opts,
    warmupSeconds: WARMUP_MS / 1000,
    lines: 'one TCP line per device (one request in flight per line), timeoutMs 1000, retries 1',
    memory: 'RSS is this whole process (gateway in-process); a later scenario starts with what the earlier left',
  };
  const ratioDef = 'coalesced points/s ÷ uncoalesced points/s';
  printReport(
    'modbus',
    {
      options,
      peer: { kind: 'fast', pid: peer.pid, exit: peer.exit },
      scenarios,
      ratio: { value: ratio, definition: ratioDef },
      notes: notes(scenarios, opts),
    },
    summaryLine(scenarios, opts, ratio),
  );
}
