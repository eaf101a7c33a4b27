// The rules bench's two scenarios (scripts/bench/rules.ts describes them): `workers`, the real
// gateway (rules in worker shards) driving the actuator peer (lib/peer.ts), and `inline`, the
// same rules in a RuleEngine on this main thread fed the same readings.
import type { MqttClient } from 'mqtt';
import type { RuleConfig } from '../../../config/rules-schema.js';
import { mqtt } from '../../../drivers/mqtt/index.js';
import type { OutpostEvent } from '../../../gateway/contract/types.js';
// Loaded up front, as it always was: inline shares this process with the gateway's modules.
import type { Gateway } from '../../../gateway/gateway.js';
import '../../../gateway/gateway.js';
import { RuleEngine, type Fact } from '../../../gateway/rules/engine.js';
import { connectClient, endClient } from './mqtt-load.js';
import { Child, Guard, libScript } from './procs.js';
import { sleep } from './report.js';
import {
  PROBE_DEVICE,
  PROBE_RULES,
  Pacer,
  RELAY_COIL,
  ReadingStream,
  TIMEZONE,
  probeExpected,
  probePoint,
  probeTopic,
  siteConfig,
} from './rules-setup.js';
import { Peaks, UsageWindow, peaksMB, type WindowFigures } from './sampling.js';
import { startGateway } from './site.js';
import { MetricsDelta, mb, parsePrometheus, round, sum, summarize } from './stats.js';

export const WARMUP_MS = 1_000;
/** The target for reading → lock command. */
export const TARGET_P99_MS = 5;
export type RulesParams = { rate: number; batch: number; seconds: number; probeMs: number };

/** The actuator peer: probes it published (`p <seq> <t>`) and relay writes it received (`w <fc> <address> <value> <t>`), on its clock. */
export class RulesPeer {
  readonly probes: number[][] = [];
  private readonly raw: number[][] = [];
  private constructor(
    readonly child: Child,
    readonly port: number,
  ) {
    child.onLine((l) => {
      const [tag, ...f] = l.split(' ');
      if (tag === 'p' && this.probes.length < 1e6) this.probes.push(f.map(Number));
      if (tag === 'w' && this.raw.length < 1e6) this.raw.push(f.map(Number));
    });
  }

  static async start(guard: Guard): Promise<RulesPeer> {
    const child = new Child('Modbus peer', [libScript('peer'), 'actuator']);
    guard.children.add(child);
    return new RulesPeer(child, Number(await child.waitFor('ready')));
  }
  /** [value, t] of the relay coil's writes, in arrival order. */
  writes(): number[][] {
    return this.raw.filter(([fc, address]) => fc === 5 && address === RELAY_COIL).map(([, , value, t]) => [value, t]);
  }
  stopProbes(): Promise<unknown> {
    return this.child.ask('unprobe', 'unprobed', 5_000).catch(() => undefined);
  }
}

/** This process's share of a window. eventLoopDelayMs: how late a 1 ms timer ran (beyond its 1 ms). */
function usageOf(w: WindowFigures, peaks: Peaks) {
  const { cpuPercent, mainThreadBusyPercent, eventLoopDelayMs, machineCpuPercent, otherProcessesCpuPercent } = w;
  return {
    cpuPercent,
    mainThreadBusyPercent,
    eventLoopDelayMs: eventLoopDelayMs!,
    machineCpuPercent,
    otherProcessesCpuPercent,
    ...peaksMB(peaks),
  };
}

export async function runWorkers(opts: RulesParams, rules: RuleConfig[], peer: RulesPeer, guard: Guard) {
  const dir = guard.tempDir('rules');
  const peaks = new Peaks(250);
  let [gw, data, pacer] = [null as Gateway | null, null as MqttClient | null, null as Pacer | null];
  try {
    const started = await startGateway(siteConfig(peer.port, dir, rules), 'bench-rules.yaml');
    gw = started.gw;
    const startRss = process.memoryUsage.rss();
    const mqttPort = gw.supervisor.instanceOf(mqtt)?.ports?.tcp;
    if (!mqttPort) throw new Error('the gateway started without an MQTT listener');
    const client = (data = await connectClient(mqttPort, `bench-rules-data-${process.pid}`));
    // Probe firings, in the order this main thread saw them (probe value = seq + 1).
    const fired: number[] = [];
    gw.bus.on('event', (e: OutpostEvent) => {
      const value = (e.data as { context?: { value?: unknown } } | undefined)?.context?.value;
      if (e.type === 'rule.fired' && e.subject?.startsWith('probe-') && typeof value === 'number') fired.push(value - 1);
    });
    const stream = new ReadingStream(opts);
    const publish = (m: number) => {
      const { topic, payload } = stream.payload(m, Date.now());
      client.publish(topic, payload, { qos: 0 });
    };
    const p = (pacer = new Pacer(stream.messagesPerSec, publish, () => !client.stream.writableNeedDrain));
    peaks.start();
    p.start();
    await peer.child.ask(`probe ${mqttPort} ${opts.probeMs} ${PROBE_RULES} ${probeTopic()}`, 'probing', 5_000);
    await sleep(WARMUP_MS);

    const snapshot = async () => ({ peerCpu: peer.child.cpuSeconds(), samples: parsePrometheus(await gw!.metrics.registry.metrics()) });
    const before = await snapshot();
    const [sent0, skipped0, probes0] = [p.sent, p.skipped, peer.probes.length];
    const window = new UsageWindow({ resolutionMs: 1, beyond: true });
    await sleep(opts.seconds * 1000);
    const [sent, skipped, probes1] = [p.sent - sent0, p.skipped - skipped0, peer.probes.length];
    const after = await snapshot();
    const peerCpu = after.peerCpu !== null && before.peerCpu !== null ? after.peerCpu - before.peerCpu : null;
    const usage = window.close(undefined, peerCpu ?? 0);
    p.stop();
    await peer.stopProbes();
    await sleep(500); // the last probes' writes
    peaks.stop();

    // Writes pair with probe firings one to one, in order (one Modbus line); a write whose value is
    // not what the firing asked for means a write went missing: that firing stays unpaired.
    const writeAt = new Map<number, number>();
    const writes = peer.writes();
    let [j, mismatches] = [0, 0];
    for (const seq of fired) {
      if (j >= writes.length) break;
      if (writes[j][0] !== probeExpected(seq)) mismatches++;
      else writeAt.set(seq, writes[j++][1]);
    }
    // The probes published in the window, publish → the write reaching the peer (both on the peer's clock).
    const measured = peer.probes.slice(probes0, probes1);
    const latency = summarize(measured.flatMap(([seq, t]) => (writeAt.has(seq) ? [writeAt.get(seq)! - t] : [])));
    const firedInWindow = new Set(fired);
    const d = new MetricsDelta(after.samples, before.samples);
    const perSec = (n: number) => Math.round(n / usage.seconds);
    const firings = d.byLabel('outpost_rules_firings_total', 'rule');
    const rejects = d.byLabel('outpost_rejects_total', 'reason');
    return {
      name: 'workers' as const,
      seconds: round(usage.seconds, 3)!,
      startSeconds: round(started.startSeconds, 3)!,
      rules: rules.length,
      series: 1000,
      readingsPublishedPerSec: perSec(sent * opts.batch),
      messagesSkipped: skipped, // Messages the pacer skipped: it was more than 100 ms behind (a stall, or the MQTT socket wanting a drain).
      readingsReceivedPerSec: perSec(d.total('outpost_readings_received_total')),
      readingsCommittedPerSec: perSec(d.total('outpost_readings_committed_total')),
      eventsCommittedPerSec: perSec(d.total('outpost_events_committed_total')),
      evaluationsPerSec: perSec(d.total('outpost_rules_evaluations_total')),
      firingsPerSec: perSec(sum(Object.values(firings))),
      probeFiringsPerSec: perSec(sum(Object.entries(firings).flatMap(([k, v]) => (k.startsWith('probe-') ? [v] : [])))),
      rejects: { total: sum(Object.values(rejects)), byReason: rejects },
      probes: {
        sent: measured.length,
        fired: measured.filter(([seq]) => firedInWindow.has(seq)).length,
        written: latency.count,
        lost: measured.length - latency.count,
        writeValueMismatches: mismatches,
      },
      readingToWriteMs: latency,
      overTarget: { count: measured.filter(([seq, t]) => (writeAt.get(seq) ?? Infinity) - t > TARGET_P99_MS).length },
      targetP99Ms: TARGET_P99_MS,
      targetMet: latency.p99 === null ? null : latency.p99 <= TARGET_P99_MS && latency.count === measured.length,
      usage: usageOf(usage, peaks),
      peerCpuPercent: peerCpu === null ? null : round((100 * peerCpu) / usage.seconds, 0),
      startRssMB: mb(startRss)!,
    };
  } finally {
    pacer?.stop();
    await peer.stopProbes();
    peaks.stop();
    if (data) await endClient(data);
    await gw?.stop('bench done');
    guard.removeDir(dir);
  }
}

export async function runInline(opts: RulesParams, rules: RuleConfig[]) {
  const engine = new RuleEngine(rules, { timezone: TIMEZONE });
  const stream = new ReadingStream(opts);
  const peaks = new Peaks(250);
  const times = { batch: [] as number[], probe: [] as number[], tick: [] as number[] };
  let [measuring, firings, busy, seq] = [false, 0, 0, 0];
  // Times the engine call alone: the facts are built before it.
  const timed = (out: number[], facts: Fact[] | null) => {
    const t = performance.now();
    const n = (facts ? engine.process(facts) : engine.tick(Date.now())).length;
    const dt = performance.now() - t;
    if (!measuring) return;
    [busy, firings] = [busy + dt, firings + n];
    out.push(dt);
  };
  const readings = (m: number) => stream.readings(m, Date.now()).map((r): Fact => ({ kind: 'reading', reading: r }));
  const pacer = new Pacer(stream.messagesPerSec, (m) => timed(times.batch, readings(m)));
  const probe = (s: number): Fact[] => [
    { kind: 'reading', reading: { ts: Date.now(), device: PROBE_DEVICE, point: probePoint(s), value: s + 1 } },
  ];
  // The probes, and a tick a second as the host does.
  const timers = [setInterval(() => timed(times.probe, probe(seq++)), opts.probeMs), setInterval(() => timed(times.tick, null), 1_000)];
  try {
    peaks.start();
    pacer.start();
    await sleep(WARMUP_MS);
    const [evals0, sent0, skipped0] = [engine.stats().evaluations, pacer.sent, pacer.skipped];
    measuring = true;
    const window = new UsageWindow({ resolutionMs: 1, beyond: true });
    await sleep(opts.seconds * 1000);
    const usage = window.close();
    measuring = false;
    const perSec = (n: number) => Math.round(n / usage.seconds);
    return {
      name: 'inline' as const,
      seconds: round(usage.seconds, 3)!,
      rules: rules.length,
      readingsPerSec: perSec((pacer.sent - sent0) * opts.batch),
      messagesSkipped: pacer.skipped - skipped0,
      evaluationsPerSec: perSec(engine.stats().evaluations - evals0),
      firingsPerSec: perSec(firings),
      // engine.process() per message batch and per probe reading, engine.tick() once a second, ms.
      batchMs: summarize(times.batch),
      probeMs: summarize(times.probe),
      tickMs: summarize(times.tick),
      engineBusyPercent: round((100 * busy) / (usage.seconds * 1000), 1)!, // Share of the window the main thread spent inside the engine.
      usage: usageOf(usage, peaks),
    };
  } finally {
    pacer.stop();
    timers.forEach(clearInterval);
    peaks.stop();
  }
}
