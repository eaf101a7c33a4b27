// The rules bench's inline scenario: the same rules in a RuleEngine on the main thread, fed the same readings.
import { performance } from 'node:perf_hooks';
import { RuleEngine, type Fact } from '../../../gateway/rules/engine.js';
import type { RuleConfig } from '../../../config/rules-schema.js';
import { CpuProfile } from './cpu-profile.js';
import { Instruments, ms } from './rules-measure.js';
import type { InlineResult } from './rules-report.js';
import { PROBE_DEVICE, Pacer, ReadingStream, TIMEZONE, WARMUP_MS, probePoint, sleep, type RulesOptions } from './rules-setup.js';
import { round } from './stats.js';

export async function runInline(opts: RulesOptions, rules: RuleConfig[]): Promise<InlineResult> {
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
