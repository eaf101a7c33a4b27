// One ingest scenario against a running gateway child: connect P clients, publish for a
// fixed time, then wait until the gateway's committed counter stops moving, and turn the
// /metrics deltas and client-side timings into a result.
import type { MqttClient } from 'mqtt';
import { QUEUE_METRIC, type ChildSampler, type GatewayChild } from './gateway-child.js';
import { connectClient, endClient, runQos0, runQos1, type PublishResult } from './publishers.js';
import { bucketDelta, byLabel, histogram, histogramQuantile, round, summarize, total, type Sample } from './stats.js';

export interface ScenarioSpec {
  name: string;
  qos: 0 | 1;
  readingsPerMessage: number;
}

export interface ScenarioParams {
  seconds: number;
  publishers: number;
  window: number;
}

export interface ScenarioResult {
  name: string;
  qos: 0 | 1;
  readingsPerMessage: number;
  publishers: number;
  window: number | null;
  publishSeconds: number;
  /** Scenario start → the last increase of the committed counter. */
  commitSeconds: number;
  settleTimedOut: boolean;
  messages: number;
  messagesPerSec: number;
  failedPublishes: number;
  readingsPublished: number;
  readingsCommitted: number;
  committedReadingsPerSec: number;
  /** QoS1: measured per message in the bench process. */
  pubackLatencyMs: { p50: number | null; p99: number | null; max: number | null; count: number } | null;
  /** From the outpost_commit_latency_seconds delta (one observation per write call). */
  commitLatencyMs: { p50: number | null; p99: number | null; observations: number; p50AtLeast: boolean; p99AtLeast: boolean };
  rejects: { total: number; byReason: Record<string, number> };
  peakRssMB: number;
  /** Highest outpost_store_queue_rows seen by the 250 ms sampler. */
  peakQueueRows: number;
  /** Start → settled; 100 = one core busy the whole time. */
  cpuPercent: { gateway: number | null; bench: number };
}

const COMMITTED = 'outpost_readings_committed_total';
const REJECTS = 'outpost_rejects_total';
const COMMIT_LATENCY = 'outpost_commit_latency_seconds';
const POLL_MS = 50;
/** Counter unchanged this long (many flush intervals) with an empty queue = settled. */
const STABLE_MS = 400;
const SETTLE_MAX_MS = 15_000;
const PAYLOAD_VARIANTS = 64;
const MAX_MESSAGES_PER_CLIENT = 5_000_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A small ring of ready-made payloads, so the bench spends its CPU on sending. */
function buildPayloads(readingsPerMessage: number): Buffer[] {
  const ts = Date.now();
  return Array.from({ length: PAYLOAD_VARIANTS }, (_, v) => {
    const one = (i: number) => ({ temp: round(20 + ((v * 7 + i) % 100) / 10, 1), ts: ts + i });
    const doc = readingsPerMessage === 1 ? one(0) : Array.from({ length: readingsPerMessage }, (_, i) => one(i));
    return Buffer.from(JSON.stringify(doc));
  });
}

async function settle(child: GatewayChild): Promise<{ samples: Sample[]; at: number; timedOut: boolean }> {
  const until = performance.now() + SETTLE_MAX_MS;
  let last = -1;
  let lastChangeAt = performance.now();
  for (;;) {
    const samples = await child.metrics();
    const now = performance.now();
    const committed = total(samples, COMMITTED);
    if (committed !== last) {
      last = committed;
      lastChangeAt = now;
    } else if (total(samples, QUEUE_METRIC) === 0 && now - lastChangeAt >= STABLE_MS) {
      return { samples, at: lastChangeAt, timedOut: false };
    }
    if (now >= until) return { samples, at: lastChangeAt, timedOut: true };
    await sleep(POLL_MS);
  }
}

async function publishAll(spec: ScenarioSpec, params: ScenarioParams, clients: MqttClient[], site: string, deadline: number) {
  const payloads = buildPayloads(spec.readingsPerMessage);
  return Promise.all(
    clients.map((client, i) => {
      const opts = { topic: `devices/${site}/bench/bench-p${i}/telemetry`, payloads, deadline, maxMessages: MAX_MESSAGES_PER_CLIENT };
      return spec.qos === 1 ? runQos1(client, { ...opts, window: params.window }) : runQos0(client, opts);
    }),
  );
}

export async function runScenario(
  spec: ScenarioSpec,
  params: ScenarioParams,
  child: GatewayChild,
  sampler: ChildSampler,
): Promise<ScenarioResult> {
  const clients: MqttClient[] = [];
  try {
    for (let i = 0; i < params.publishers; i++) clients.push(await connectClient(child.mqttPort, `bench-${spec.name}-${i}-${process.pid}`));
    const before = await child.metrics();
    sampler.takeWindow();
    const cpu0 = { child: child.cpuSeconds(), self: process.cpuUsage() };
    const t0 = performance.now();
    const results = await publishAll(spec, params, clients, child.site, t0 + params.seconds * 1000);
    const publishEnd = performance.now();
    const settled = await settle(child);
    const wall = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(cpu0.self);
    const childCpu = child.cpuSeconds();
    const cpuPercent = {
      gateway: childCpu === null || cpu0.child === null ? null : round((100 * (childCpu - cpu0.child)) / wall, 0),
      bench: round((100 * (self.user + self.system)) / 1e6 / wall, 0)!,
    };
    const peaks = sampler.takeWindow();
    return report(spec, params, results, before, settled.samples, {
      publishSeconds: (publishEnd - t0) / 1000,
      commitSeconds: (settled.at - t0) / 1000,
      settleTimedOut: settled.timedOut,
      peakRssMB: peaks.rss / 2 ** 20,
      peakQueueRows: peaks.queueRows,
      cpuPercent,
    });
  } finally {
    await Promise.all(clients.map(endClient));
  }
}

function report(
  spec: ScenarioSpec,
  params: ScenarioParams,
  results: PublishResult[],
  before: Sample[],
  after: Sample[],
  t: Pick<ScenarioResult, 'publishSeconds' | 'commitSeconds' | 'settleTimedOut' | 'peakRssMB' | 'peakQueueRows' | 'cpuPercent'>,
): ScenarioResult {
  const messages = results.reduce((n, r) => n + r.messages, 0);
  const committed = total(after, COMMITTED) - total(before, COMMITTED);
  const latency = spec.qos === 1 ? summarize(results.flatMap((r) => r.latenciesMs)) : null;
  const buckets = bucketDelta(histogram(after, COMMIT_LATENCY), histogram(before, COMMIT_LATENCY));
  const p50 = histogramQuantile(0.5, buckets);
  const p99 = histogramQuantile(0.99, buckets);
  const rejectsBefore = byLabel(before, REJECTS, 'reason');
  const byReason: Record<string, number> = {};
  for (const [reason, n] of Object.entries(byLabel(after, REJECTS, 'reason'))) {
    const d = n - (rejectsBefore[reason] ?? 0);
    if (d !== 0) byReason[reason] = d;
  }
  const ms = (s: number | null) => round(s === null ? null : s * 1000, 2);
  return {
    name: spec.name,
    qos: spec.qos,
    readingsPerMessage: spec.readingsPerMessage,
    publishers: params.publishers,
    window: spec.qos === 1 ? params.window : null,
    publishSeconds: round(t.publishSeconds, 3)!,
    commitSeconds: round(t.commitSeconds, 3)!,
    settleTimedOut: t.settleTimedOut,
    messages,
    messagesPerSec: Math.round(messages / t.publishSeconds),
    failedPublishes: results.reduce((n, r) => n + r.failed, 0),
    readingsPublished: messages * spec.readingsPerMessage,
    readingsCommitted: committed,
    committedReadingsPerSec: t.commitSeconds > 0 ? Math.round(committed / t.commitSeconds) : 0,
    pubackLatencyMs: latency && { p50: round(latency.p50), p99: round(latency.p99), max: round(latency.max), count: latency.count },
    commitLatencyMs: {
      p50: ms(p50.value),
      p99: ms(p99.value),
      observations: buckets.length ? buckets[buckets.length - 1]![1] : 0,
      p50AtLeast: p50.capped,
      p99AtLeast: p99.capped,
    },
    rejects: { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason },
    peakRssMB: round(t.peakRssMB, 1)!,
    peakQueueRows: t.peakQueueRows,
    cpuPercent: t.cpuPercent,
  };
}
