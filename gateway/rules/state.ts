// The engine's serialisable state: plain arrays and objects only, so JSON.stringify /
// structured clone carry it across restarts and worker crashes. Series are listed as
// (device, point) pairs rather than nested records so no id can collide with "__proto__".
import type { ReadingValue } from '../contract/types.js';
import type { CompiledRule, Instance, Series } from './rule.js';
import type { EventEntry, EventLog } from './windows.js';

export interface SeriesState {
  device: string;
  point: string;
  value: ReadingValue;
  ts: number;
  samples?: { ts: number[]; v: number[] };
}

export interface InstanceState {
  rule: string;
  key: string;
  since: number | null;
  active: boolean;
  lastFired: number | null;
  ts: number;
  device?: string;
  point?: string;
  value?: ReadingValue;
  previous?: ReadingValue;
  zone?: string;
  type?: string;
  subject?: string;
}

export interface EngineState {
  version: 1;
  series: SeriesState[];
  events: EventEntry[];
  instances: InstanceState[];
}

export interface EngineInternals {
  byId: ReadonlyMap<string, CompiledRule>;
  store: ReadonlyMap<string, ReadonlyMap<string, Series>>;
  events: EventLog;
  noneKeepMs: number;
  series(device: string, point: string): Series;
  remembersEvent(type: string): boolean;
  settle(inst: Instance, now: number): void;
  forget(inst: Instance): void;
}

export function toState(e: EngineInternals): EngineState {
  const series: SeriesState[] = [];
  for (const points of e.store.values()) {
    for (const s of points.values()) {
      const item: SeriesState = { device: s.device, point: s.point, value: s.value, ts: s.ts };
      if (s.buf && s.buf.size > 0) item.samples = s.buf.toJSON();
      series.push(item);
    }
  }
  const instances: InstanceState[] = [];
  for (const rule of e.byId.values()) {
    for (const i of rule.instances.values()) {
      const item: InstanceState = { rule: rule.id, key: i.key, since: i.since, active: i.active, lastFired: i.lastFired, ts: i.ts };
      for (const k of ['device', 'point', 'value', 'previous', 'zone', 'type', 'subject'] as const)
        if (i[k] !== undefined) Object.assign(item, { [k]: i[k] });
      instances.push(item);
    }
  }
  return { version: 1, series, events: e.events.toJSON(), instances };
}

/**
 * Merges `state` into the engine. On a fresh engine this is an exact restore; layering several
 * snapshots (e.g. the shards of an older sharding, which all saw the same facts) also works:
 * the newest latest value wins, duplicate samples/events are kept once, and an instance in
 * `state` replaces the engine's instance of the same rule and key. Samples are re-pruned to
 * the current windows.
 */
export function fromState(e: EngineInternals, state: EngineState): void {
  if (state?.version !== 1) throw new Error(`unsupported rule engine state version ${String(state?.version)}`);
  for (const item of state.series ?? []) {
    const s = e.series(item.device, item.point);
    if (item.ts >= s.ts && item.value !== null) {
      s.value = item.value;
      s.ts = item.ts;
    }
    if (s.buf && item.samples) s.buf.load(item.samples.ts, item.samples.v, s.keepMs);
  }
  if (e.noneKeepMs > 0) e.events.load(state.events ?? [], (type) => e.remembersEvent(type), e.noneKeepMs);
  for (const item of state.instances ?? []) {
    const rule = e.byId.get(item.rule);
    // Rules removed since the snapshot, or switched between reading and event triggers, start afresh.
    // (Reading-rule instances always name their point; event-rule instances never do.)
    if (!rule || rule.event !== (item.point === undefined)) continue;
    const inst: Instance = {
      rule,
      key: item.key,
      since: item.since ?? null,
      active: item.active === true && rule.cond !== null,
      lastFired: item.lastFired ?? null,
      ts: item.ts,
    };
    for (const k of ['device', 'point', 'zone', 'type', 'subject'] as const) if (typeof item[k] === 'string') inst[k] = item[k];
    if (item.value !== undefined && item.value !== null) inst.value = item.value;
    if (item.previous !== undefined && item.previous !== null) inst.previous = item.previous;
    const old = rule.instances.get(inst.key);
    if (old) e.forget(old);
    rule.instances.set(inst.key, inst);
    e.settle(inst, inst.ts);
  }
}
