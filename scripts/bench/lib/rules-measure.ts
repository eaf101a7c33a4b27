// Process measurements of the rules bench: memory sampler, CPU/event-loop window, instruments, latency summaries.
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { GcRecorder, MachineCpu, StallRecorder, spanStats, type SpanStats } from './rules-diag.js';
import { wallMs } from './rules-peer-child.js';
import { SAMPLE_EVERY_MS } from './rules-setup.js';
import { Sampler } from './sampler.js';
import { percentile, round, summarize } from './stats.js';

/** Event-loop delay is sampled by a 1 ms timer; reported as the delay beyond it. */
const LOOP_RESOLUTION_MS = 1;

export interface Ms {
  count: number;
  p50: number | null;
  /** Steadier than p99 when there are only a few hundred samples (p99 of 250 is the 3rd worst). */
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export function ms(samples: readonly number[]): Ms {
  const s = summarize(samples);
  const sorted = Float64Array.from(samples).sort();
  return { count: s.count, p50: round(s.p50, 3), p90: round(percentile(sorted, 90), 3), p99: round(s.p99, 3), max: round(s.max, 3) };
}

export interface ProcessUsage {
  /** This process, all threads (main thread, rule worker, DuckDB, the data publisher); 100 = one core. */
  cpuPercent: number;
  /** Share of the window the main thread was busy (event-loop utilisation). */
  mainThreadBusyPercent: number;
  /** How late a 1 ms timer ran on the main thread (beyond its 1 ms), from monitorEventLoopDelay. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Main-thread stalls (a 1 ms timer ≥ 3 ms late) and main-thread GC pauses in the window. */
  mainThreadStalls: SpanStats;
  mainThreadGc: SpanStats;
  /** Every process on the machine, and all but this one (and the peer, in workers); 100 = one core. */
  machineCpuPercent: number | null;
  otherProcessesCpuPercent: number | null;
  peakRssMB: number;
  peakHeapUsedMB: number;
}

/** One measurement window: CPU, event-loop utilisation and delay, stalls, GC, machine load. */
export class Window {
  readonly from = wallMs();
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly elu0 = performance.eventLoopUtilization();
  private readonly loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private readonly machine = new MachineCpu();

  constructor(
    private readonly stalls: StallRecorder,
    private readonly gc: GcRecorder,
  ) {
    this.loop.enable();
  }

  close(sampler: Sampler, otherCpuSeconds = 0): { seconds: number; to: number; usage: ProcessUsage } {
    this.loop.disable();
    const to = wallMs();
    const seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const elu: EventLoopUtilization = performance.eventLoopUtilization(this.elu0);
    const machine = this.machine.percent();
    const own = (100 * ((cpu.user + cpu.system) / 1e6 + otherCpuSeconds)) / seconds;
    const beyond = (ns: number) => round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS), 2)!;
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1)!;
    return {
      seconds,
      to,
      usage: {
        cpuPercent: round((100 * (cpu.user + cpu.system)) / 1e6 / seconds, 0)!,
        mainThreadBusyPercent: round(100 * elu.utilization, 0)!,
        eventLoopDelayMs: { p50: beyond(this.loop.percentile(50)), p99: beyond(this.loop.percentile(99)), max: beyond(this.loop.max) },
        mainThreadStalls: spanStats(this.stalls.spans, this.from, to),
        mainThreadGc: spanStats(this.gc.spans, this.from, to),
        machineCpuPercent: machine,
        otherProcessesCpuPercent: machine === null ? null : Math.max(0, Math.round(machine - own)),
        peakRssMB: mb(sampler.peakRss),
        peakHeapUsedMB: mb(sampler.peakHeapUsed),
      },
    };
  }
}

/** Sampler, stall and GC recorders of one scenario: started together, stopped together. */
export class Instruments {
  readonly sampler = new Sampler(SAMPLE_EVERY_MS);
  readonly stalls = new StallRecorder(2);
  readonly gc = new GcRecorder();

  start(): void {
    this.sampler.start();
    this.stalls.start();
    this.gc.start();
  }

  stop(): void {
    this.sampler.stop();
    this.stalls.stop();
    this.gc.stop();
  }

  window(): Window {
    return new Window(this.stalls, this.gc);
  }
}
