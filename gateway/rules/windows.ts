// Sample and event memory for windowed and `none` conditions. Both are time-ordered
// parallel arrays with a moving head: pruning the oldest entries is O(1) per entry and the
// arrays are compacted only occasionally, so a steady stream of readings does not allocate.
import type { Aggregate, CompareOp } from '../../config/rules-schema.js';
import { compare } from './compare.js';

/** Per series; the oldest samples are dropped beyond this, whatever the window says. */
export const MAX_SAMPLES = 10_000;
/** Remembered events for `none` conditions, oldest dropped first. */
export const MAX_EVENTS = 10_000;

/** Index of the first element of sorted `ts[from..]` that is > x. */
function firstAfter(ts: number[], from: number, x: number): number {
  let lo = from,
    hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

abstract class TimeLog {
  ts: number[] = [];
  protected head = 0;

  get size(): number {
    return this.ts.length - this.head;
  }

  /** Drops entries with ts <= cutoff (they are outside every window: windows exclude their far edge). */
  prune(cutoff: number): void {
    const n = this.ts.length;
    while (this.head < n && this.ts[this.head] <= cutoff) this.head++;
    this.compact();
  }

  protected dropOldest(max: number): void {
    if (this.size > max) this.head = this.ts.length - max;
  }

  /** Where a new entry at `t` goes: the end, unless it arrived out of order. */
  protected slot(t: number): number {
    const n = this.ts.length;
    return n === this.head || t >= this.ts[n - 1] ? n : firstAfter(this.ts, this.head, t);
  }

  /** Whether an entry at exactly `t` satisfies `same`. */
  protected has(t: number, same: (i: number) => boolean): boolean {
    for (let i = firstAfter(this.ts, this.head, t) - 1; i >= this.head && this.ts[i] === t; i--) if (same(i)) return true;
    return false;
  }

  protected compact(): void {
    if (this.head > 1024 && this.head * 2 > this.ts.length) {
      this.spliceAll(0, this.head);
      this.head = 0;
    }
  }

  protected abstract spliceAll(start: number, count: number): void;
}

export class SampleBuffer extends TimeLog {
  v: number[] = [];

  add(t: number, value: number, keepMs: number): void {
    const at = this.slot(t);
    if (at === this.ts.length) {
      this.ts.push(t);
      this.v.push(value);
    } else {
      this.ts.splice(at, 0, t);
      this.v.splice(at, 0, value);
    }
    this.dropOldest(MAX_SAMPLES);
    this.prune(this.ts[this.ts.length - 1] - keepMs);
  }

  /** Samples with now - windowMs < ts <= now, aggregated and compared; an empty window is false. */
  test(agg: Aggregate, now: number, windowMs: number, op: CompareOp, value: number): boolean {
    const { ts, v } = this;
    let count = 0,
      sum = 0,
      min = Infinity,
      max = -Infinity;
    for (let i = firstAfter(ts, this.head, now - windowMs); i < ts.length && ts[i] <= now; i++) {
      const x = v[i];
      count++;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    if (count === 0) return false;
    const got = agg === 'count' ? count : agg === 'sum' ? sum : agg === 'min' ? min : agg === 'max' ? max : sum / count;
    return compare(got, op, value);
  }

  toJSON(): { ts: number[]; v: number[] } {
    return { ts: this.ts.slice(this.head), v: this.v.slice(this.head) };
  }

  /** Merges saved samples; one already held (same ts and value) is not added twice. */
  load(ts: readonly number[], v: readonly number[], keepMs: number): void {
    const n = Math.min(ts.length, v.length);
    for (let i = 0; i < n; i++) {
      const t = ts[i],
        x = v[i];
      if (typeof t === 'number' && typeof x === 'number' && !this.has(t, (j) => this.v[j] === x)) this.add(t, x, keepMs);
    }
  }

  protected spliceAll(start: number, count: number): void {
    this.ts.splice(start, count);
    this.v.splice(start, count);
  }
}

export type EventEntry = [ts: number, type: string, subject: string];

export class EventLog extends TimeLog {
  types: string[] = [];
  subjects: string[] = [];

  add(t: number, type: string, subject: string, keepMs: number): void {
    const at = this.slot(t);
    this.ts.splice(at, 0, t);
    this.types.splice(at, 0, type);
    this.subjects.splice(at, 0, subject);
    this.dropOldest(MAX_EVENTS);
    this.prune(this.ts[this.ts.length - 1] - keepMs);
  }

  /** Whether an event of the type (exact, or prefix when `prefix`) and subject happened in (now - withinMs, now]. */
  seen(now: number, withinMs: number, type: string, prefix: boolean, subject: string | undefined): boolean {
    const cutoff = now - withinMs;
    for (let i = this.ts.length - 1; i >= this.head && this.ts[i] > cutoff; i--) {
      if (this.ts[i] > now) continue;
      const ty = this.types[i];
      if (prefix ? !ty.startsWith(type) : ty !== type) continue;
      if (subject === undefined || this.subjects[i] === subject) return true;
    }
    return false;
  }

  /** Merges saved events; one already held is not added twice. */
  load(entries: readonly EventEntry[], keep: (type: string) => boolean, keepMs: number): void {
    for (const [t, type, subject] of entries) {
      if (!keep(type) || this.has(t, (j) => this.types[j] === type && this.subjects[j] === subject)) continue;
      this.add(t, type, subject, keepMs);
    }
  }

  toJSON(): EventEntry[] {
    const out: EventEntry[] = [];
    for (let i = this.head; i < this.ts.length; i++) out.push([this.ts[i], this.types[i], this.subjects[i]]);
    return out;
  }

  protected spliceAll(start: number, count: number): void {
    this.ts.splice(start, count);
    this.types.splice(start, count);
    this.subjects.splice(start, count);
  }
}
