// Where a slow reading → write went, for the rules bench: main-thread stalls (a 1 ms
// timer that ran late), main-thread GC pauses, rule-state persists (the host's snapshot
// every 5 s, seen by wrapping its public persist()), and how busy the whole machine was
// (other processes on a shared machine disturb every timing).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import type { RulesHost } from '../../../gateway/rules/host.js';
import { wallMs } from './rules-peer-child.js';

/** [start, end] in this process's wall clock (ms since the epoch). */
export type Span = [number, number];

const overlaps = (spans: readonly Span[], from: number, to: number) => spans.some(([a, b]) => a < to && b > from);

/** Records every gap of more than `thresholdMs` beyond a 1 ms timer's period. */
export class StallRecorder {
  readonly spans: Span[] = [];
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  constructor(private readonly thresholdMs = 2) {}

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      if (now - this.last > 1 + this.thresholdMs && this.spans.length < 100_000) {
        const origin = performance.timeOrigin;
        this.spans.push([origin + this.last, origin + now]);
      }
      this.last = now;
    }, 1);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Garbage-collection pauses of this (main) thread. */
export class GcRecorder {
  readonly spans: Span[] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (this.spans.length < 100_000) this.spans.push([performance.timeOrigin + e.startTime, performance.timeOrigin + e.startTime + e.duration]);
    }
  });

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.observer.disconnect();
  }
}

/** Wraps the host's persist() (snapshot of every shard + DuckDB write) to time each call. */
export class PersistRecorder {
  readonly spans: Span[] = [];
  private readonly original: RulesHost['persist'];

  constructor(private readonly host: RulesHost) {
    this.original = host.persist;
    const spans = this.spans;
    const original = this.original;
    host.persist = async function persist(this: RulesHost): Promise<void> {
      const span: Span = [wallMs(), NaN];
      spans.push(span);
      try {
        await original.call(this);
      } finally {
        span[1] = wallMs();
      }
    };
  }

  restore(): void {
    this.host.persist = this.original;
  }
}

export interface SpanStats {
  count: number;
  totalMs: number;
  maxMs: number | null;
}

export function spanStats(spans: readonly Span[], from: number, to: number): SpanStats {
  const inside = spans.filter(([a, b]) => a >= from && b <= to && Number.isFinite(b));
  const lengths = inside.map(([a, b]) => b - a);
  return {
    count: inside.length,
    totalMs: Math.round(lengths.reduce((s, x) => s + x, 0) * 10) / 10,
    maxMs: lengths.length ? Math.round(Math.max(...lengths) * 100) / 100 : null,
  };
}

/** Of the given [from, to] paths, how many overlapped each kind of span. */
export function attribute(paths: readonly Span[], kinds: Record<string, readonly Span[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, spans] of Object.entries(kinds)) out[name] = paths.filter(([from, to]) => overlaps(spans, from, to)).length;
  out.none = paths.filter(([from, to]) => !Object.values(kinds).some((spans) => overlaps(spans, from, to))).length;
  return out;
}

/** Busy and total jiffies of all CPUs, from /proc/stat (null off Linux). */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const first = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = first.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((s, x) => s + x, 0); // user..steal (guest is inside user)
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Whole-machine CPU over a window, in % of one core (so 200 = two cores busy). */
export class MachineCpu {
  private readonly t0 = machineTicks();

  percent(): number | null {
    const t1 = machineTicks();
    if (!this.t0 || !t1 || t1.total <= this.t0.total) return null;
    return Math.round((100 * cpus().length * (t1.busy - this.t0.busy)) / (t1.total - this.t0.total));
  }
}
