// Compiles a rule's condition tree into closures once, at engine construction, so a reading
// costs a few calls instead of a walk over config objects. While compiling, it records which
// series need window samples (and for how long) and which event types `none` must remember.
import type { ReadingValue } from '../contract/types.js';
import { LocalClock, minuteOfDay, parseTimeOfDay, weekday } from './clock.js';
import { compare, globRegExp, literalRegExp } from './compare.js';
import { AGGREGATES, DAYS, durationMs, type Aggregate, type Condition, type RuleTrigger } from '../../config/rules-schema.js';
import type { DeviceDirectory } from './devices.js';
import type { EventLog, SampleBuffer } from './windows.js';

/** What conditions may read of one series: its latest value and its window samples. */
export interface SeriesView {
  readonly device: string;
  readonly point: string;
  value: ReadingValue;
  ts: number;
  buf: SampleBuffer | null;
}

/** The moment being evaluated; one mutable object is reused for every evaluation. */
export interface Scope {
  now: number;
  /** The triggering reading's series (undefined for event-triggered rules). */
  series: SeriesView | undefined;
  /** The triggering reading's value (undefined for event-triggered rules). */
  value: ReadingValue | undefined;
  /** The device the fact is about: the reading's, or an event's data.device / subject. */
  device: string | undefined;
  /** A zone the fact names itself (an event's data.zone); else the device's configured zone applies. */
  zone: string | undefined;
}

export interface Host {
  series(device: string, point: string): SeriesView | undefined;
  readonly events: EventLog;
  readonly clock: LocalClock;
  readonly devices: DeviceDirectory;
}

export type Pred = (s: Scope) => boolean;

/** Requirements collected while compiling: samples to keep per series, events to remember. */
export interface Needs {
  windows: { device: RegExp; point: RegExp; ms: number }[];
  none: { type: string; prefix: boolean; ms: number }[];
}

const FALSE: Pred = () => false;

export function compileCondition(c: Condition, trigger: RuleTrigger, host: Host, needs: Needs, path: string): Pred {
  const sub = (x: Condition, at: string) => compileCondition(x, trigger, host, needs, at);
  if (c.all) {
    const parts = c.all.map((x, i) => sub(x, `${path}.all[${i}]`));
    return (s) => {
      for (const p of parts) if (!p(s)) return false;
      return true;
    };
  }
  if (c.any) {
    const parts = c.any.map((x, i) => sub(x, `${path}.any[${i}]`));
    return (s) => {
      for (const p of parts) if (p(s)) return true;
      return false;
    };
  }
  if (c.not) {
    const inner = sub(c.not, `${path}.not`);
    return (s) => !inner(s);
  }
  if (c.value) {
    const { op, value } = c.value;
    return (s) => s.value !== undefined && compare(s.value, op, value);
  }
  if (c.point) {
    const { device, point, op, value } = c.point;
    // A point never reported is unknown: false for every op, `!=` included.
    return () => {
      const r = host.series(device, point);
      return r !== undefined && compare(r.value, op, value);
    };
  }
  if (c.device) {
    const match = host.devices.compile(c.device);
    return match ? (s) => match(s.device, s.zone) : () => true;
  }
  if (c.time) return compileTime(c.time, host.clock, path);
  // `none`: no such event within the window; `seen`: at least one — "A then B within T"
  // is a rule triggered by B with `seen: { type: A, within: T }`.
  const ev = c.none ?? c.seen;
  if (ev) {
    const ms = durationMs(ev.within);
    const prefix = ev.type.endsWith('*');
    const type = prefix ? ev.type.slice(0, -1) : ev.type;
    needs.none.push({ type, prefix, ms });
    const negate = c.none !== undefined;
    return (s) => host.events.seen(s.now, ms, type, prefix, ev.subject) !== negate;
  }
  for (const agg of AGGREGATES) {
    const w = c[agg];
    if (w) return compileWindow(agg, w, trigger, host, needs);
  }
  throw new Error(`${path}: empty condition`);
}

type Windowed = NonNullable<Condition['avg']>;

function compileWindow(agg: Aggregate, w: Windowed, trigger: RuleTrigger, host: Host, needs: Needs): Pred {
  const ms = durationMs(w.window);
  const { op, value } = w;
  // A side not named defaults to the triggering reading's; event rules must name both.
  const own = trigger.reading ?? trigger.change;
  const dev = w.device ?? own?.device;
  const pt = w.point ?? own?.point;
  if (dev === undefined || pt === undefined) return FALSE;
  needs.windows.push({
    device: w.device !== undefined ? literalRegExp(dev) : globRegExp(dev),
    point: w.point !== undefined ? literalRegExp(pt) : globRegExp(pt),
    ms,
  });
  const test = (r: SeriesView | undefined, now: number) => r?.buf?.test(agg, now, ms, op, value) ?? false;
  if (w.device === undefined && w.point === undefined) return (s) => test(s.series, s.now);
  if (w.device !== undefined && w.point !== undefined) {
    const d = w.device,
      p = w.point;
    return (s) => test(host.series(d, p), s.now);
  }
  return (s) => s.series !== undefined && test(host.series(w.device ?? s.series.device, w.point ?? s.series.point), s.now);
}

function compileTime(t: NonNullable<Condition['time']>, clock: LocalClock, path: string): Pred {
  let from = 0,
    to = 0;
  if (t.between) {
    try {
      from = parseTimeOfDay(t.between[0]);
      to = parseTimeOfDay(t.between[1]);
    } catch (err) {
      throw new Error(`${path}.time.between: ${(err as Error).message}`, { cause: err });
    }
  }
  const dayMask = t.days ? t.days.reduce((m, d) => m | (1 << DAYS.indexOf(d)), 0) : 0x7f;
  // from == to (or no `between`) is the whole day; from > to wraps past midnight.
  return (s) => {
    const local = clock.localMinutes(s.now);
    if ((dayMask & (1 << weekday(local))) === 0) return false;
    const m = minuteOfDay(local);
    return from < to ? m >= from && m < to : from > to ? m >= from || m < to : true;
  };
}
