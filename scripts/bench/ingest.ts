// Ingest bench: the real gateway daemon as a child process, fed over MQTT by mqtt.js clients in this
// process, against the baseline: a bare DuckDB appender loop on the same machine (lib/ingest-run.ts).
//
//   npm run bench -- ingest [--seconds 5] [--publishers 4] [--window 200] [--batch 100] [--baseline-batch N] [--only qos1-batch,…]
//
// Batched scenarios publish JSON arrays of {"temp": v, "ts": ms}. The baseline commits --baseline-batch
// rows per transaction, by default store.flushRows (the gateway's best case, not its typical batch).
import { int, num, only, parseOptions } from './lib/cli.js';
import { GatewayDaemon, defaultFlushRows, runBaseline, runScenario, type ScenarioSpec } from './lib/ingest-run.js';
import { Guard } from './lib/procs.js';
import { printReport, progress } from './lib/report.js';
import { mb, round } from './lib/stats.js';

const SITE = 'bench';
const SCENARIOS = ['qos1-single', 'qos1-batch', 'qos0-single', 'qos0-batch'] as const;
const log = progress('ingest');

type ScenarioResult = Awaited<ReturnType<typeof runScenario>>;

function summaryLine(scenarios: ScenarioResult[], baselineRowsPerSec: number, ratio: number | null, peakMB: number): string {
  const ms = (x: number | null) => (x === null ? 'n/a' : x.toFixed(1));
  const parts = ['qos1-batch', 'qos1-single', 'qos0-batch', 'qos0-single'].flatMap((name) => {
    const s = scenarios.find((x) => x.name === name);
    if (!s) return [];
    const c = s.commitLatencyMs;
    const lat = s.pubackLatencyMs
      ? ` (p50 ${ms(s.pubackLatencyMs.p50)} ms, p99 ${ms(s.pubackLatencyMs.p99)} ms)`
      : ` (commit p50 ${c.p50AtLeast ? '>=' : ''}${ms(c.p50)} ms, p99 ${c.p99AtLeast ? '>=' : ''}${ms(c.p99)} ms)`;
    return [`${s.name} ${s.committedReadingsPerSec} readings/s${lat}`];
  });
  return `ingest: ${parts.join(', ')}, baseline appender ${baselineRowsPerSec} rows/s, ratio ${ratio === null ? 'n/a' : ratio.toFixed(2)}, peak RSS ${Math.round(peakMB)} MB`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions('ingest', args, {
    seconds: num(5, 0.5, 600, 'BENCH_SECONDS'),
    publishers: int(4, 1, 64, 'BENCH_PUBLISHERS'),
    window: int(200, 1, 10_000),
    batch: int(100, 1, 10_000),
    baselineBatch: int(defaultFlushRows(), 1, 1_000_000),
    only: only(SCENARIOS),
  });
  const spec = (name: string): ScenarioSpec => ({
    name,
    qos: name.startsWith('qos1') ? 1 : 0,
    readingsPerMessage: name.endsWith('batch') ? opts.batch : 1,
  });
  const specs = (opts.only ?? SCENARIOS).map(spec);
  const guard = new Guard();
  try {
    const gw = await GatewayDaemon.start(SITE, guard);
    const scenarios: ScenarioResult[] = [];
    let hwm: number | null = null;
    try {
      for (const spec of specs) {
        log(`running ${spec.name} for ${opts.seconds} s…`);
        scenarios.push(await runScenario(spec, opts, gw, SITE));
      }
      hwm = gw.child.memory()?.hwm ?? null;
    } finally {
      await gw.stop();
    }
    // After the child is gone, so the appender loop gets the machine the gateway had.
    log(`running baseline appender (${opts.baselineBatch} rows/commit) for ${opts.seconds} s…`);
    const baseline = await runBaseline({ seconds: opts.seconds, batchRows: opts.baselineBatch, devices: opts.publishers }, guard);
    const ratioOf = (s: ScenarioResult) => round(s.committedReadingsPerSec / baseline.rowsPerSec, 3);
    const best = scenarios.filter((s) => s.qos === 1).sort((a, b) => b.committedReadingsPerSec - a.committedReadingsPerSec)[0];
    const ratio = best ? ratioOf(best) : null;
    const peakRss = { vmHwmMB: mb(hwm), sampledMaxMB: Math.max(0, ...scenarios.map((s) => s.peakRssMB)) };
    printReport(
      'ingest',
      {
        options: { ...opts, payload: 'batched messages are a JSON array of {"temp": v, "ts": ms} objects' },
        scenarios: scenarios.map((s) => ({ ...s, ratioToBaseline: ratioOf(s) })),
        baseline,
        ratio: { value: ratio, scenario: best?.name ?? null, definition: 'best QoS1 committed readings/s ÷ baseline rows/s' },
        gateway: { peakRss, exit: gw.child.exit },
      },
      summaryLine(scenarios, baseline.rowsPerSec, ratio, Math.max(peakRss.vmHwmMB ?? 0, peakRss.sampledMaxMB)),
    );
  } finally {
    guard.release();
  }
}
