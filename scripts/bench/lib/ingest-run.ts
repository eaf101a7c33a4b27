// The ingest bench's two sides. The real daemon (`node dist/gateway/cli.js run`) as a child process,
// so the bench measures what an installer runs, process boundary and memory included: a scenario
// publishes from P mqtt.js clients for a fixed time, waits until the committed counter stops moving
// and reads the /metrics deltas. The baseline: a bare DuckDB appender loop in this process writing
// rows shaped like the gateway's (its DDL via openDatabase, the append calls of gateway/store/writer.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBTimestampTZValue, type DuckDBAppender } from '@duckdb/node-api';
import type { MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { SiteConfigSchema } from '../../../config/schema.js';
import { openDatabase } from '../../../gateway/store/db.js';
import { connectClient, endClient, runQos0, runQos1 } from './mqtt-load.js';
import { Child, Guard, LOOPBACK, freePorts } from './procs.js';
import { sleep } from './report.js';
import { Peaks } from './sampling.js';
import { benchSite } from './site.js';
import { MetricsDelta, mb, parsePrometheus, round, sum, summarize, total, type Sample } from './stats.js';

const CLI = fileURLToPath(new URL('../../../gateway/cli.js', import.meta.url));
const QUEUE = 'outpost_store_queue_rows';
const COMMITTED = 'outpost_readings_committed_total';
/** Counter unchanged this long (many flush intervals) with an empty queue = settled. */
const STABLE_MS = 400;
const SETTLE_MAX_MS = 15_000;
const MAX_MESSAGES_PER_CLIENT = 5_000_000;

export type ScenarioSpec = { name: string; qos: 0 | 1; readingsPerMessage: number };
export type LoadParams = { seconds: number; publishers: number; window: number };

/** The daemon as a child process: its MQTT port and /metrics; its RSS sampled from /proc per window. */
export class GatewayDaemon {
  private readonly peaks: Peaks;
  private constructor(
    readonly child: Child,
    readonly mqttPort: number,
    readonly httpUrl: string,
  ) {
    this.peaks = new Peaks(250, [child.pid]).start();
  }

  static async start(site: string, guard: Guard): Promise<GatewayDaemon> {
    const dir = guard.tempDir('ingest');
    const [mqttPort, httpPort] = await freePorts(2);
    const config = join(dir, 'site.yaml');
    const mqtt = { host: LOOPBACK, port: mqttPort, maxMessagesPerSecond: 0, maxConnections: 10000 };
    const http = { host: LOOPBACK, port: httpPort, tokens: [], rateLimit: { authFailures: { max: 1e6 }, requests: { max: 1e9 } } };
    writeFileSync(config, stringify(benchSite(join(dir, 'data'), { site, log: { level: 'warn' }, http, drivers: { mqtt } })));
    // The env would override log.level; the bench wants warnings and errors only.
    const env = { ...process.env, OUTPOST_LOG_LEVEL: undefined, LOG_LEVEL: undefined };
    // Same heap cap as `npm start` and the systemd unit, so RSS is what a site would see.
    const child = new Child('gateway', ['--max-old-space-size=256', CLI, 'run', '--config', config], env);
    guard.children.add(child);
    const tail: string[] = [];
    child.onLine((l) => tail.push(l) > 20 && tail.shift());
    for (const until = Date.now() + 30_000; ; await sleep(100)) {
      if (child.exit) throw new Error(`gateway exited during start (${JSON.stringify(child.exit)}): ${tail.join('\n')}`);
      if ((await fetch(`http://${LOOPBACK}:${httpPort}/health`).catch(() => null))?.status === 200) break;
      if (Date.now() > until) throw new Error(`gateway not healthy after 30 s: ${tail.join('\n')}`);
    }
    return new GatewayDaemon(child, mqttPort, `http://${LOOPBACK}:${httpPort}`);
  }

  async metrics(): Promise<Sample[]> {
    const res = await fetch(`${this.httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return parsePrometheus(await res.text());
  }
  /** The child's peak RSS since the last call (bytes). */
  takePeakRss(): number {
    const peak = Math.max(this.peaks.pids.get(this.child.pid) ?? 0, this.child.memory()?.rss ?? 0);
    this.peaks.pids.set(this.child.pid, 0);
    return peak;
  }
  async stop(): Promise<void> {
    this.peaks.stop();
    await this.child.stop();
  }
}

/** Polls /metrics until the committed counter has not moved for STABLE_MS with an empty queue. */
async function settle(gw: GatewayDaemon): Promise<{ samples: Sample[]; at: number; timedOut: boolean }> {
  const until = performance.now() + SETTLE_MAX_MS;
  let last = -1;
  let lastChangeAt = performance.now();
  for (;;) {
    const samples = await gw.metrics();
    const now = performance.now();
    if (total(samples, COMMITTED) !== last) [last, lastChangeAt] = [total(samples, COMMITTED), now];
    else if (total(samples, QUEUE) === 0 && now - lastChangeAt >= STABLE_MS) return { samples, at: lastChangeAt, timedOut: false };
    if (now >= until) return { samples, at: lastChangeAt, timedOut: true };
    await sleep(50);
  }
}

/** A small ring of ready-made payloads, so the bench spends its CPU on sending. */
function payloads(readingsPerMessage: number): Buffer[] {
  const ts = Date.now();
  return Array.from({ length: 64 }, (_, v) => {
    const one = (i: number) => ({ temp: round(20 + ((v * 7 + i) % 100) / 10, 1), ts: ts + i });
    return Buffer.from(JSON.stringify(readingsPerMessage === 1 ? one(0) : Array.from({ length: readingsPerMessage }, (_, i) => one(i))));
  });
}

export async function runScenario(spec: ScenarioSpec, params: LoadParams, gw: GatewayDaemon, site: string) {
  const clients: MqttClient[] = [];
  try {
    for (let i = 0; i < params.publishers; i++) clients.push(await connectClient(gw.mqttPort, `bench-${spec.name}-${i}-${process.pid}`));
    const before = await gw.metrics();
    gw.takePeakRss();
    const cpu0 = { gw: gw.child.cpuSeconds(), self: process.cpuUsage() };
    const t0 = performance.now();
    const ring = payloads(spec.readingsPerMessage);
    const results = await Promise.all(
      clients.map((client, i) => {
        const topic = `devices/${site}/bench/bench-p${i}/telemetry`;
        const opts = { topic, payloads: ring, deadline: t0 + params.seconds * 1000, maxMessages: MAX_MESSAGES_PER_CLIENT };
        return spec.qos === 1 ? runQos1(client, { ...opts, window: params.window }) : runQos0(client, opts);
      }),
    );
    const publishSeconds = (performance.now() - t0) / 1000;
    const settled = await settle(gw);
    const wall = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(cpu0.self);
    const gwCpu = gw.child.cpuSeconds();
    const peakRss = gw.takePeakRss();

    const d = new MetricsDelta(settled.samples, before);
    const commitSeconds = (settled.at - t0) / 1000;
    const messages = sum(results.map((r) => r.messages));
    const committed = d.total(COMMITTED);
    const latencies = results.flatMap((r) => r.latenciesMs);
    const latency = spec.qos === 1 ? summarize(latencies, 2) : null;
    const ms = (s: number | null) => round(s === null ? null : s * 1000, 2);
    const [p50, p99] = [0.5, 0.99].map((q) => d.quantile('outpost_commit_latency_seconds', q));
    const byReason = d.byLabel('outpost_rejects_total', 'reason');
    return {
      name: spec.name,
      qos: spec.qos,
      readingsPerMessage: spec.readingsPerMessage,
      publishers: params.publishers,
      window: spec.qos === 1 ? params.window : null,
      publishSeconds: round(publishSeconds, 3)!,
      commitSeconds: round(commitSeconds, 3)!, // Scenario start → the last increase of the committed counter.
      settleTimedOut: settled.timedOut,
      messages,
      messagesPerSec: Math.round(messages / publishSeconds),
      failedPublishes: sum(results.map((r) => r.failed)),
      readingsPublished: messages * spec.readingsPerMessage,
      readingsCommitted: committed,
      committedReadingsPerSec: commitSeconds > 0 ? Math.round(committed / commitSeconds) : 0,
      /** QoS1: measured per message in the bench process. */
      pubackLatencyMs: latency && { p50: latency.p50, p99: latency.p99, max: latency.max, count: latency.count },
      /** From the outpost_commit_latency_seconds delta (one observation per write call). */
      commitLatencyMs: {
        p50: ms(p50.value),
        p99: ms(p99.value),
        observations: d.total('outpost_commit_latency_seconds_count'),
        p50AtLeast: p50.capped,
        p99AtLeast: p99.capped,
      },
      rejects: { total: sum(Object.values(byReason)), byReason },
      peakRssMB: mb(peakRss)!,
      /** Start → settled; 100 = one core busy the whole time. */
      cpuPercent: {
        gateway: gwCpu === null || cpu0.gw === null ? null : round((100 * (gwCpu - cpu0.gw)) / wall, 0),
        bench: round((100 * (self.user + self.system)) / 1e6 / wall, 0)!,
      },
    };
  } finally {
    await Promise.all(clients.map(endClient));
  }
}

/** The gateway's default `store.flushRows` (the most rows one group commit takes). */
export const defaultFlushRows = (): number => Number(SiteConfigSchema.properties.store.properties.flushRows.default);

/** BEGIN / append `batchRows` rows / flushSync / COMMIT, for `seconds`. */
export async function runBaseline(opts: { seconds: number; batchRows: number; devices: number }, guard: Guard) {
  const dir = guard.tempDir('baseline');
  const db = await openDatabase(join(dir, 'baseline.duckdb'));
  let app: DuckDBAppender | null = null;
  try {
    const conn = db.writer;
    app = await conn.createAppender('readings');
    const devices = Array.from({ length: opts.devices }, (_, i) => `bench-p${i}`);
    const t0 = performance.now();
    let seq = 1;
    let batches = 0;
    while (performance.now() < t0 + opts.seconds * 1000 && batches < 1_000_000) {
      await conn.run('BEGIN TRANSACTION');
      // As appendReadings() in gateway/store/writer.ts for a numeric reading without unit or quality.
      const nowMs = Date.now();
      for (let i = 0; i < opts.batchRows; i++, seq++) {
        app.appendBigInt(BigInt(seq));
        app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(Math.round((nowMs + i) * 1000))));
        app.appendVarchar(devices[seq % devices.length]);
        app.appendVarchar('temp');
        app.appendDouble(20 + (seq % 100) / 10);
        app.appendNull();
        app.appendNull();
        app.appendNull();
        app.endRow();
      }
      app.flushSync();
      await conn.run('COMMIT');
      batches++;
    }
    const seconds = (performance.now() - t0) / 1000;
    return { rows: seq - 1, batches, batchRows: opts.batchRows, seconds: round(seconds, 3)!, rowsPerSec: Math.round((seq - 1) / seconds) };
  } finally {
    app?.closeSync();
    db.close();
    guard.removeDir(dir);
  }
}
