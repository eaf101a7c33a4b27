// Numbers for bench reports: exact percentiles of measured samples, a small Prometheus
// text parser, and quantiles estimated from a histogram's bucket deltas.

export interface Percentiles {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: readonly number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : null,
  };
}

export const round = (x: number | null, digits = 2): number | null =>
  x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus text exposition into samples (comments and blank lines skipped). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of every series of one metric (all label sets). */
export function total(samples: readonly Sample[], name: string): number {
  let sum = 0;
  for (const s of samples) if (s.name === name) sum += s.value;
  return sum;
}

/** Per-label-value sums of one metric, e.g. rejects by reason. */
export function byLabel(samples: readonly Sample[], name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = s.labels[label] ?? '';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

/** Per-label-value increase of one metric from `before` to `after`; unchanged values left out. */
export function labelDelta(after: readonly Sample[], before: readonly Sample[], name: string, label: string): Record<string, number> {
  const prev = byLabel(before, name, label);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(byLabel(after, name, label))) {
    const d = v - (prev[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** Cumulative histogram buckets as [upper bound, count], ascending, +Inf last. */
export type Buckets = Array<[number, number]>;

export function histogram(samples: readonly Sample[], name: string): Buckets {
  const out: Buckets = [];
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    out.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

export function bucketDelta(after: Buckets, before: Buckets): Buckets {
  const prev = new Map(before);
  return after.map(([le, n]) => [le, n - (prev.get(le) ?? 0)]);
}

/**
 * Estimates a quantile (0..1) the way PromQL's histogram_quantile does: linear inside the
 * bucket that holds the rank. A rank in the +Inf bucket returns the last finite bound,
 * so the result is a lower bound there (flagged by `capped`).
 */
export function histogramQuantile(q: number, buckets: Buckets): { value: number | null; capped: boolean } {
  const count = buckets.length ? buckets[buckets.length - 1]![1] : 0;
  if (count <= 0) return { value: null, capped: false };
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (const [le, n] of buckets) {
    if (n >= rank) {
      if (le === Infinity) return { value: lower, capped: true };
      const inBucket = n - below;
      return { value: inBucket > 0 ? lower + ((le - lower) * (rank - below)) / inBucket : le, capped: false };
    }
    lower = le === Infinity ? lower : le;
    below = n;
  }
  return { value: lower, capped: true };
}
