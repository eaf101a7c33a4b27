// Ingest bench: the real gateway daemon as a child process, fed over MQTT by mqtt.js
// clients in this process, compared with a bare DuckDB appender loop on the same machine.
//
//   npm run bench -- ingest [--seconds 5] [--publishers 4] [--window 200] [--batch 100]
//                           [--baseline-batch N] [--only qos1-batch,qos0-single]
//
// Batched scenarios publish a JSON array of {"temp": v, "ts": ms} objects (one reading
// each). The baseline commits `--baseline-batch` rows per transaction, by default the
// gateway's store.flushRows default (the row count at which the gateway commits without
// waiting for flushIntervalMs), i.e. the gateway's best case, not its typical batch.
import { parseArgs } from 'node:util';
import { defaultFlushRows, runBaseline, type BaselineResult } from './lib/baseline.js';
import { ChildSampler, GatewayChild, type ChildLog } from './lib/gateway-child.js';
import { runScenario, type ScenarioResult, type ScenarioSpec } from './lib/scenario.js';
import { round } from './lib/stats.js';

interface IngestOptions {
  seconds: number;
  publishers: number;
  window: number;
  batch: number;
  baselineBatch: number;
  only: string[] | null;
}

const SITE = 'bench';

class UsageError extends Error {
  override name = 'UsageError';
}

function scenarioSpecs(batch: number): ScenarioSpec[] {
  return [
    { name: 'qos1-single', qos: 1, readingsPerMessage: 1 },
    { name: 'qos1-batch', qos: 1, readingsPerMessage: batch },
    { name: 'qos0-single', qos: 0, readingsPerMessage: 1 },
    { name: 'qos0-batch', qos: 0, readingsPerMessage: batch },
  ];
}

function positive(name: string, raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`--${name} must be a number in (0, ${max}], got "${raw}"`);
  return n;
}

function parseOptions(args: string[]): IngestOptions {
  try {
    return readOptions(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
}

function readOptions(args: string[]): IngestOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seconds: { type: 'string' },
      publishers: { type: 'string' },
      window: { type: 'string' },
      batch: { type: 'string' },
      'baseline-batch': { type: 'string' },
      only: { type: 'string' },
    },
  });
  const batch = Math.round(positive('batch', values.batch, 100, 10_000));
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const known = scenarioSpecs(batch).map((s) => s.name);
  const unknown = only?.filter((n) => !known.includes(n)) ?? [];
  if (unknown.length) throw new UsageError(`unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return {
    seconds: positive('seconds', values.seconds ?? process.env.BENCH_SECONDS, 5, 600),
    publishers: Math.round(positive('publishers', values.publishers ?? process.env.BENCH_PUBLISHERS, 4, 64)),
    window: Math.round(positive('window', values.window, 200, 10_000)),
    batch,
    baselineBatch: Math.round(positive('baseline-batch', values['baseline-batch'], defaultFlushRows(), 1_000_000)),
    only,
  };
}

/** Kills the child if the bench is interrupted or exits without reaching its cleanup. */
function guardChild(child: GatewayChild): () => void {
  const onExit = () => child.killNow();
  const onSignal = (signal: NodeJS.Signals) => {
    child.killNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

interface GatewayRun {
  scenarios: ScenarioResult[];
  peakRss: { vmHwmMB: number | null; sampledMaxMB: number };
  childLog: ChildLog;
  childExit: GatewayChild['exitStatus'];
}

async function runGateway(opts: IngestOptions): Promise<GatewayRun> {
  const child = await GatewayChild.start(SITE);
  const unguard = guardChild(child);
  const sampler = new ChildSampler(child, 250);
  sampler.start();
  const scenarios: ScenarioResult[] = [];
  let hwm: number | null = null;
  try {
    for (const spec of scenarioSpecs(opts.batch)) {
      if (opts.only && !opts.only.includes(spec.name)) continue;
      process.stderr.write(`ingest: running ${spec.name} for ${opts.seconds} s…\n`);
      scenarios.push(await runScenario(spec, opts, child, sampler));
    }
    hwm = child.memory()?.hwm ?? null;
  } finally {
    sampler.stop();
    await child.stop();
    unguard();
  }
  return {
    scenarios,
    peakRss: { vmHwmMB: hwm === null ? null : round(hwm / 2 ** 20, 1), sampledMaxMB: round(sampler.peakRss / 2 ** 20, 1)! },
    childLog: child.logSummary,
    childExit: child.exitStatus,
  };
}

function summaryLine(scenarios: ScenarioResult[], baseline: BaselineResult, ratio: number | null, peakMB: number): string {
  const order = ['qos1-batch', 'qos1-single', 'qos0-batch', 'qos0-single'];
  const ms = (x: number | null) => (x === null ? 'n/a' : x.toFixed(1));
  const parts = order.flatMap((name) => {
    const s = scenarios.find((x) => x.name === name);
    if (!s) return [];
    const c = s.commitLatencyMs;
    const lat = s.pubackLatencyMs
      ? ` (p50 ${ms(s.pubackLatencyMs.p50)} ms, p99 ${ms(s.pubackLatencyMs.p99)} ms)`
      : ` (commit p50 ${c.p50AtLeast ? '>=' : ''}${ms(c.p50)} ms, p99 ${c.p99AtLeast ? '>=' : ''}${ms(c.p99)} ms)`;
    return [`${s.name} ${s.committedReadingsPerSec} readings/s${lat}`];
  });
  return (
    `ingest: ${parts.join(', ')}, baseline appender ${Math.round(baseline.rowsPerSec)} rows/s` +
    `, ratio ${ratio === null ? 'n/a' : ratio.toFixed(2)}, peak RSS ${Math.round(peakMB)} MB`
  );
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const gw = await runGateway(opts);
  // After the child is gone, so the appender loop gets the machine the gateway had.
  process.stderr.write(`ingest: running baseline appender (${opts.baselineBatch} rows/commit) for ${opts.seconds} s…\n`);
  const baseline = await runBaseline({ seconds: opts.seconds, batchRows: opts.baselineBatch, devices: opts.publishers });
  const ratioOf = (s: ScenarioResult) => round(s.committedReadingsPerSec / baseline.rowsPerSec, 3);
  const durable = gw.scenarios.filter((s) => s.qos === 1);
  const best = durable.reduce<ScenarioResult | null>((b, s) => (!b || s.committedReadingsPerSec > b.committedReadingsPerSec ? s : b), null);
  const ratio = best ? ratioOf(best) : null;
  const peakMB = Math.max(gw.peakRss.vmHwmMB ?? 0, gw.peakRss.sampledMaxMB);
  const result = {
    bench: 'ingest',
    options: { ...opts, payload: 'batched messages are a JSON array of {"temp": v, "ts": ms} objects' },
    scenarios: gw.scenarios.map((s) => ({ ...s, ratioToBaseline: ratioOf(s) })),
    baseline: { ...baseline, seconds: round(baseline.seconds, 3), rowsPerSec: Math.round(baseline.rowsPerSec) },
    ratio: { value: ratio, scenario: best?.name ?? null, definition: 'best QoS1 committed readings/s ÷ baseline rows/s' },
    gateway: { peakRss: gw.peakRss, log: gw.childLog, exit: gw.childExit },
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(summaryLine(gw.scenarios, baseline, ratio, peakMB));
}
