// Numbers for bench reports: exact percentiles of measured samples, and deltas of the
// gateway's Prometheus metrics between two scrapes (counters, labels, histogram quantiles).

export const round = (x: number | null | undefined, digits = 2): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;

export const mb = (bytes: number | null | undefined): number | null =>
  round(bytes === null || bytes === undefined ? null : bytes / 2 ** 20, 1);

export const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

/** p90 is steadier than p99 when there are only a few hundred samples. */
export type Summary = { count: number; p50: number | null; p90: number | null; p99: number | null; max: number | null };

/** Count, nearest-rank p50/p90/p99 and max of samples, rounded to `digits`. */
export function summarize(samples: readonly number[], digits = 3): Summary {
  const s = Float64Array.from(samples).sort();
  const at = (p: number) => (s.length ? round(s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)], digits) : null);
  return { count: s.length, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

export type Sample = { name: string; labels: Record<string, string>; value: number };

const LINE = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus text exposition into samples (comments and blank lines skipped). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = line.startsWith('#') ? null : LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of every series of one metric (all label sets). */
export const total = (samples: readonly Sample[], name: string): number => sum(samples.filter((s) => s.name === name).map((s) => s.value));

function byKey(samples: readonly Sample[], name: string, key: (l: Record<string, string>) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) if (s.name === name) out.set(key(s.labels), (out.get(key(s.labels)) ?? 0) + s.value);
  return out;
}

/** What the metrics say happened between two scrapes. */
export class MetricsDelta {
  constructor(
    private readonly after: readonly Sample[],
    private readonly before: readonly Sample[],
  ) {}

  total(name: string): number {
    return total(this.after, name) - total(this.before, name);
  }
  /** Increase per label value (or per `key` of the labels); unchanged ones left out. */
  byLabel(name: string, label: string | ((l: Record<string, string>) => string)): Record<string, number> {
    const key = typeof label === 'string' ? (l: Record<string, string>) => l[label] ?? '' : label;
    const prev = byKey(this.before, name, key);
    const out: Record<string, number> = {};
    for (const [k, v] of byKey(this.after, name, key)) if (v !== (prev.get(k) ?? 0)) out[k] = v - (prev.get(k) ?? 0);
    return out;
  }

  // A histogram's quantile (0..1) over the interval, as PromQL's histogram_quantile does it:
  // linear inside the bucket holding the rank. A rank in the +Inf bucket gives the last finite
  // bound, a lower bound (`capped`).
  quantile(name: string, q: number): { value: number | null; capped: boolean } {
    const prev = byKey(this.before, `${name}_bucket`, (l) => l.le ?? '');
    const buckets = [...byKey(this.after, `${name}_bucket`, (l) => l.le ?? '')]
      .map(([le, n]): [number, number] => [le === '+Inf' ? Infinity : Number(le), n - (prev.get(le) ?? 0)])
      .sort((a, b) => a[0] - b[0]);
    const count = buckets.length ? buckets[buckets.length - 1][1] : 0;
    if (count <= 0) return { value: null, capped: false };
    const rank = q * count;
    let lower = 0;
    let below = 0;
    for (const [le, n] of buckets) {
      if (n >= rank) {
        if (le === Infinity) return { value: lower, capped: true };
        return { value: n > below ? lower + ((le - lower) * (rank - below)) / (n - below) : le, capped: false };
      }
      if (le !== Infinity) lower = le;
      below = n;
    }
    return { value: lower, capped: true };
  }
}
