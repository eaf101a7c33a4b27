// CPU and memory while a bench window runs: peak RSS/heap sampled on a timer (this process and,
// from /proc, other pids), and one window's CPU, main-thread busy share, event-loop delay and
// whole-machine CPU (other processes on a shared machine disturb every timing).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { procMemory } from './procs.js';
import { mb, round } from './stats.js';

/** Peak RSS and JS heap of this process and peak RSS of `pids`, sampled every `everyMs`; `extra` runs on every sample. */
export class Peaks {
  rss = 0;
  heapUsed = 0;
  readonly pids = new Map<number, number>();
  private timer?: NodeJS.Timeout;
  constructor(
    private readonly everyMs: number,
    pids: readonly number[] = [],
    private readonly extra?: () => void,
  ) {
    for (const p of pids) this.pids.set(p, 0);
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs).unref();
    return this;
  }
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
  private sample(): void {
    const m = process.memoryUsage();
    [this.rss, this.heapUsed] = [Math.max(this.rss, m.rss), Math.max(this.heapUsed, m.heapUsed)];
    for (const [pid, peak] of this.pids) this.pids.set(pid, Math.max(peak, procMemory(pid)?.rss ?? 0));
    this.extra?.();
  }
}

export const peaksMB = (p: Peaks) => ({ peakRssMB: mb(p.rss)!, peakHeapUsedMB: mb(p.heapUsed)! });

/** Busy and total jiffies of all CPUs (user..steal; guest is inside user), from /proc/stat; null off Linux. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((s, x) => s + x, 0);
    return { busy: total - f[3] - f[4], total };
  } catch {
    return null;
  }
}

/** Whole-machine CPU since construction, in % of one core (200 = two cores busy). */
export class MachineCpu {
  private readonly t0 = machineTicks();
  percent(): number | null {
    const t1 = machineTicks();
    if (!this.t0 || !t1 || t1.total <= this.t0.total) return null;
    return Math.round((100 * cpus().length * (t1.busy - this.t0.busy)) / (t1.total - this.t0.total));
  }
}

export type WindowFigures = ReturnType<UsageWindow['close']>;

// One window of this process, construction to close(): CPU (all threads, 100 = one core), main-thread
// busy share, machine CPU and what other processes used of it. With `loop`, event-loop delay sampled
// by a `resolutionMs` timer, as its whole period or (`beyond`) only what it ran late.
export class UsageWindow {
  readonly startedAt = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly elu0 = performance.eventLoopUtilization();
  private readonly machine = new MachineCpu();
  private readonly delay?: IntervalHistogram;
  constructor(private readonly loop?: { resolutionMs: number; beyond: boolean }) {
    this.delay = loop && monitorEventLoopDelay({ resolution: loop.resolutionMs });
    this.delay?.enable();
  }
  /** `otherCpuSeconds`: another process of the bench's own (a peer), not counted as "other processes". */
  close(end = performance.now(), otherCpuSeconds = 0) {
    this.delay?.disable();
    const seconds = (end - this.startedAt) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const machine = this.machine.percent();
    const lateMs = (ns: number) => round(Math.max(0, ns / 1e6 - (this.loop?.beyond ? this.loop.resolutionMs : 0)), 2)!;
    const d = this.delay;
    return {
      seconds,
      cpuSeconds,
      cpuPercent: round((100 * cpuSeconds) / seconds, 0)!,
      mainThreadBusyPercent: round(100 * performance.eventLoopUtilization(this.elu0).utilization, 0)!,
      eventLoopDelayMs: d && { p50: lateMs(d.percentile(50)), p99: lateMs(d.percentile(99)), max: lateMs(d.max) },
      machineCpuPercent: machine,
      otherProcessesCpuPercent:
        machine === null ? null : Math.max(0, Math.round(machine - (100 * (cpuSeconds + otherCpuSeconds)) / seconds)),
    };
  }
}
