// The rules bench's workers scenario: the real gateway (rules in worker shards) driving a Modbus actuator peer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { parseConfig } from '../../../config/site.js';
import { Gateway } from '../../../gateway/gateway.js';
import type { RuleConfig } from '../../../config/rules-schema.js';
import type { OutpostEvent, Reading } from '../../../gateway/contract/types.js';
import { CpuProfile } from './cpu-profile.js';
import { connectClient, endClient } from './publishers.js';
import { PersistRecorder } from './rules-diag.js';
import { Instruments } from './rules-measure.js';
import { RulesPeerChild, wallMs } from './rules-peer-child.js';
import { reportWorkers, type ProbeRecord, type Snapshot, type WorkersResult } from './rules-report.js';
import { DRAIN_MS, PROBE_DEVICE, Pacer, ReadingStream, RELAY_COIL, WARMUP_MS, probeExpected, siteConfig, sleep, type RulesOptions } from './rules-setup.js';
import { parsePrometheus } from './stats.js';
import { mqtt } from '../../../drivers/mqtt/index.js';

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

async function snapshot(gw: Gateway, peer: RulesPeerChild): Promise<Snapshot> {
  return { peerCpu: peer.cpuSeconds(), samples: parsePrometheus(await gw.metrics.registry.metrics()) };
}

export async function runWorkers(opts: RulesOptions, rules: RuleConfig[], peer: RulesPeerChild, dirs: Set<string>): Promise<WorkersResult> {
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
    const mqttPort = gw.supervisor.instanceOf(mqtt)?.ports?.tcp;
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
