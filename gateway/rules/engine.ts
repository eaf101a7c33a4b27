// The rule engine: pure (no I/O, no timers; Intl only), so it runs inside a Piscina worker or
// inline. All state round-trips through snapshot()/restore() as plain JSON.
//
// Semantics (time is always the fact's `ts`, or `now` for tick; all durations in ms):
//  1. Every reading first updates latest[device][point] (unless older than the stored one,
//     so a late, out-of-order reading cannot roll a point back), then rules are evaluated.
//  2. Windows: numeric readings (booleans as 1/0; strings and NaN/±Infinity are skipped) of a
//     series referenced by a windowed condition are kept as samples, pruned to the largest
//     window naming that series and capped at MAX_SAMPLES (10 000, oldest dropped first). A
//     window is now - window < ts <= now: the far edge is EXCLUSIVE (a sample exactly
//     `window` old is out), `now` inclusive, so the triggering reading is in its own window.
//     An empty window is false for every op, `count` included. A condition's `device` and
//     `point` are literal names; one left out is the triggering reading's.
//  3. `none`: events whose type matches any `none` condition are remembered (pruned to the
//     largest `within`, capped at MAX_EVENTS). `none` is true when no matching event has
//     now - within < ts <= now. Events, like readings, are recorded before evaluation, so a
//     rule triggered by event X with `none: X` sees its own trigger.
//  4. A rule is evaluated only on facts matching its trigger (globs: `*` = any run) and on
//     tick for its pending instances. Disabled rules are not compiled at all.
//  5. Instances: key `device/point` (reading rules) or the event's subject, '' if none. Each
//     has its own since/active/lastFired. `value` is false for event rules. `point` on a
//     never-reported point is false for every op, `!=` included.
//  6. `time`: local minute-of-day and weekday of `now` in the site zone; from inclusive, to
//     exclusive, from > to wraps midnight, from == to is the whole day, "24:00" ends the day.
//     `days` is the local weekday of the moment tested: 18:00–06:00 with days [fri] holds
//     Fri 18:00–24:00 and Fri 00:00–06:00, not Sat 00:00–06:00.
//  7. `for`: the first true evaluation sets `since`; the instance fires on the first
//     evaluation (matching fact, or tick) with now - since >= for, firing ts = that now. A
//     false evaluation clears `since`. Tick re-evaluates the condition at `now` with the
//     instance's last trigger (device/point/value or type/subject), so windows can expire.
//  8. Edge-triggered: after firing an instance is active and is not evaluated for firing
//     until re-armed: by `clear` holding (if the rule has one), else by `if` being false. The
//     evaluation that re-arms never fires; the next one may. A rule without `if` is always
//     true and NOT edge-triggered: it fires on every matching fact, subject to for/cooldown.
//  9. `cooldown`: no firing before lastFired + cooldown. An armed, true instance of a rule
//     with `if` stays pending and fires at the first evaluation (fact or tick) after the
//     cooldown if still true; a rule without `if` drops the blocked fact (no trailing fire).
// 10. Actions are deep copies with {{rule|device|point|value|type|subject}} rendered in
//     every string (see template.ts). Firing.key is the instance key.
// 11. stats: `rules` = enabled rules; `evaluations` = rule-instance evaluations (one per
//     matching fact per rule, one per pending instance per tick; not part of the snapshot);
//     `series` = series currently holding window samples.
// 12. restore() merges a snapshot into the engine: exact on a fresh engine, and several
//     snapshots (shards of an older layout) can be layered. Rule state is matched by rule id.
import type { OutpostEvent, Reading, ReadingValue } from '../contract/types.js';
import { LocalClock } from './clock.js';
import { compare, numeric } from './compare.js';
import { DeviceDirectory, eventDevice, type DeviceInfo } from './devices.js';
import type { Host, Needs, Scope } from './conditions.js';
import { compileRule, TriggerIndex, type CompiledRule, type Instance, type Series } from './rule.js';
import type { Action, RuleConfig } from '../../config/rules-schema.js';
import { fromState, toState, type EngineInternals, type EngineState } from './state.js';
import { renderActions } from './template.js';
import { EventLog, SampleBuffer } from './windows.js';

export type { EngineState, InstanceState, SeriesState } from './state.js';
export type Fact = { kind: 'reading'; reading: Reading } | { kind: 'event'; event: OutpostEvent };
export interface FiringContext {
  rule: string;
  device?: string;
  point?: string;
  value?: ReadingValue;
  previous?: ReadingValue;
  zone?: string;
  type?: string;
  subject?: string;
  ts: number;
}
export interface Firing {
  rule: string;
  key: string;
  ts: number;
  context: FiringContext;
  actions: Action[];
}

interface EvalScope extends Scope {
  type: string | undefined;
  subject: string | undefined;
  previous: ReadingValue | undefined;
}

export interface EngineOptions {
  timezone: string;
  /** Zone and tags of the configured devices, for trigger filters and `device` conditions. */
  devices?: readonly DeviceInfo[];
}

export class RuleEngine {
  private readonly rules: CompiledRule[] = [];
  private readonly byId = new Map<string, CompiledRule>();
  private readonly store = new Map<string, Map<string, Series>>();
  private readonly windowed = new Set<Series>();
  private readonly pending = new Set<Instance>();
  private readonly events = new EventLog();
  private readonly noneKeepMs: number;
  private readonly triggers: TriggerIndex;
  private readonly needs: Needs = { windows: [], none: [] };
  private readonly noneTypes = new Map<string, boolean>();
  private readonly scope: EvalScope = {
    now: 0,
    series: undefined,
    value: undefined,
    device: undefined,
    zone: undefined,
    type: undefined,
    subject: undefined,
    previous: undefined,
  };
  private readonly devices: DeviceDirectory;
  private evaluations = 0;

  constructor(rules: readonly RuleConfig[], opts: EngineOptions) {
    this.devices = new DeviceDirectory(opts.devices);
    const host: Host = {
      series: (device, point) => this.store.get(device)?.get(point),
      events: this.events,
      clock: new LocalClock(opts.timezone),
      devices: this.devices,
    };
    rules.forEach((cfg, idx) => {
      if (cfg.enabled === false) return;
      if (this.byId.has(cfg.id)) throw new Error(`rules[${idx}]: rule id "${cfg.id}" is used twice`);
      const rule = compileRule(cfg, idx, host, this.needs);
      this.rules.push(rule);
      this.byId.set(cfg.id, rule);
    });
    this.triggers = new TriggerIndex(this.rules);
    this.noneKeepMs = Math.max(0, ...this.needs.none.map((n) => n.ms));
  }

  process(facts: readonly Fact[]): Firing[] {
    const out: Firing[] = [];
    for (const f of facts) {
      if (f.kind === 'reading') this.onReading(f.reading, out);
      else this.onEvent(f.event, out);
    }
    return out;
  }

  tick(now: number): Firing[] {
    for (const s of this.windowed) s.buf!.prune(now - s.keepMs);
    this.events.prune(now - this.noneKeepMs);
    const out: Firing[] = [];
    if (this.pending.size === 0) return out;
    const due = [...this.pending].sort((a, b) => a.rule.idx - b.rule.idx);
    const sc = this.scope;
    for (const inst of due) {
      sc.now = now;
      sc.series = inst.device !== undefined && inst.point !== undefined ? this.series(inst.device, inst.point, false) : undefined;
      sc.value = inst.value;
      sc.previous = inst.previous;
      sc.device = inst.device;
      sc.zone = inst.zone;
      sc.type = inst.type;
      sc.subject = inst.subject;
      this.evaluate(inst.rule, inst.key, out);
    }
    return out;
  }

  snapshot(): EngineState {
    return toState(this.internals());
  }

  /**
   * Loads a snapshot: exact on a fresh engine; several snapshots can be layered (see
   * state.ts). State of rules that no longer exist (or changed trigger kind) is ignored.
   */
  restore(state: EngineState): void {
    fromState(this.internals(), state);
  }

  stats(): { rules: number; evaluations: number; series: number } {
    let series = 0;
    for (const s of this.windowed) if (s.buf!.size > 0) series++;
    return { rules: this.rules.length, evaluations: this.evaluations, series };
  }

  /** What state.ts needs to read and rebuild the state, without making it public API. */
  private internals(): EngineInternals {
    return {
      byId: this.byId,
      store: this.store,
      events: this.events,
      noneKeepMs: this.noneKeepMs,
      series: (device, point) => this.series(device, point, true),
      remembersEvent: (type) => this.remembersEvent(type),
      settle: (inst, now) => this.settle(inst, now),
      forget: (inst) => this.pending.delete(inst),
    };
  }

  /** Whether events of this type must be remembered for some `none` condition. */
  private remembersEvent(type: string): boolean {
    let yes = this.noneTypes.get(type);
    if (yes === undefined) {
      yes = this.needs.none.some((n) => (n.prefix ? type.startsWith(n.type) : type === n.type));
      if (this.noneTypes.size >= 10_000) this.noneTypes.clear();
      this.noneTypes.set(type, yes);
    }
    return yes;
  }

  /** The series record, created on first sight with its trigger list and sample retention. */
  private series(device: string, point: string, create: true): Series;
  private series(device: string, point: string, create: false): Series | undefined;
  private series(device: string, point: string, create: boolean): Series | undefined {
    let points = this.store.get(device);
    let s = points?.get(point);
    if (s || !create) return s;
    let keepMs = 0;
    for (const w of this.needs.windows) if (w.ms > keepMs && w.device.test(device) && w.point.test(point)) keepMs = w.ms;
    const buf = keepMs > 0 ? new SampleBuffer() : null;
    s = { device, point, key: `${device}/${point}`, value: 0, ts: -Infinity, buf, keepMs, rules: this.triggers.forReading(device, point) };
    if (!points) this.store.set(device, (points = new Map<string, Series>()));
    points.set(point, s);
    if (buf) this.windowed.add(s);
    return s;
  }

  private onReading(r: Reading, out: Firing[]): void {
    const s = this.series(r.device, r.point, true);
    // A change is a newer reading whose value differs from the latest known one (the first
    // reading of a point is not a change; NaN equals NaN so a dead sensor is one change).
    const previous = s.ts === -Infinity ? undefined : s.value;
    let changed = false;
    if (r.ts >= s.ts) {
      changed = previous !== undefined && previous !== r.value && !(Number.isNaN(previous) && Number.isNaN(r.value));
      s.value = r.value;
      s.ts = r.ts;
    }
    if (s.buf) {
      const n = numeric(r.value);
      if (n !== undefined) s.buf.add(r.ts, n, s.keepMs);
    }
    if (s.rules.length === 0) return;
    const sc = this.scope;
    for (const rule of s.rules) {
      const ch = rule.change;
      if (
        ch &&
        (!changed ||
          (ch.from !== undefined && !compare(previous!, '==', ch.from)) ||
          (ch.to !== undefined && !compare(r.value, '==', ch.to)))
      )
        continue;
      sc.now = r.ts;
      sc.series = s;
      sc.value = r.value;
      sc.previous = previous;
      sc.device = r.device;
      sc.zone = undefined;
      sc.type = sc.subject = undefined;
      this.evaluate(rule, s.key, out);
    }
  }

  private onEvent(e: OutpostEvent, out: Firing[]): void {
    if (this.noneKeepMs > 0 && this.remembersEvent(e.type)) this.events.add(e.ts, e.type, e.subject ?? '', this.noneKeepMs);
    const rules = this.triggers.forEvent(e.type);
    const key = e.subject ?? '';
    const sc = this.scope;
    const about = rules.length > 0 ? eventDevice(e.data, e.subject) : null;
    for (const rule of rules) {
      if (rule.subject && !rule.subject.test(key)) continue;
      if (rule.filter && !rule.filter(about!.device, about!.zone)) continue;
      sc.now = e.ts;
      sc.series = sc.value = sc.previous = undefined;
      sc.device = about!.device;
      sc.zone = about!.zone;
      sc.type = e.type;
      sc.subject = e.subject;
      this.evaluate(rule, key, out);
    }
  }

  /** One rule-instance evaluation at scope.now (semantics 7–9). */
  private evaluate(rule: CompiledRule, key: string, out: Firing[]): void {
    this.evaluations++;
    const sc = this.scope;
    const now = sc.now;
    let inst = rule.instances.get(key);
    if (inst) {
      inst.ts = now;
      this.remember(inst);
      if (inst.active) {
        if (rule.clear ? rule.clear(sc) : !rule.cond!(sc)) {
          inst.active = false;
          this.settle(inst, now);
        }
        return;
      }
    }
    if (rule.cond && !rule.cond(sc)) {
      if (inst) {
        inst.since = null;
        this.settle(inst, now);
      }
      return;
    }
    inst ??= this.instance(rule, key);
    inst.since ??= now;
    const waiting = now - inst.since < rule.forMs;
    const cooling = inst.lastFired !== null && now < inst.lastFired + rule.cooldownMs;
    if (waiting || cooling) {
      if (!waiting && !rule.cond) inst.since = null; // no trailing fire for rules without `if`
      this.settle(inst, now);
      return;
    }
    inst.lastFired = now;
    inst.since = null;
    inst.active = rule.cond !== null;
    this.settle(inst, now);
    const context: FiringContext = { rule: rule.id, ts: now };
    const zone = this.devices.zoneOf(inst.device, inst.zone);
    if (zone !== undefined) context.zone = zone;
    if (rule.event) {
      if (inst.type !== undefined) context.type = inst.type;
      if (inst.subject !== undefined) context.subject = inst.subject;
      if (inst.device !== undefined) context.device = inst.device;
    } else {
      context.device = inst.device;
      context.point = inst.point;
      if (inst.value !== undefined) context.value = inst.value;
      if (inst.previous !== undefined) context.previous = inst.previous;
    }
    out.push({ rule: rule.id, key, ts: now, context, actions: renderActions(rule.cfg.then, context, rule.event) });
  }

  private instance(rule: CompiledRule, key: string): Instance {
    const sc = this.scope;
    const inst: Instance = { rule, key, since: null, active: false, lastFired: null, ts: sc.now };
    if (sc.series) inst.point = sc.series.point;
    this.remember(inst);
    rule.instances.set(key, inst);
    return inst;
  }

  /** The instance keeps its latest trigger, so tick re-evaluations and firings can use it. */
  private remember(inst: Instance): void {
    const sc = this.scope;
    inst.device = sc.device;
    inst.zone = sc.zone;
    inst.value = sc.value;
    inst.previous = sc.previous;
    inst.type = sc.type;
    inst.subject = sc.subject;
  }

  /** Keeps pending in sync, and forgets instances with nothing left to remember. */
  private settle(inst: Instance, now: number): void {
    // Watched on every tick: instances waiting out `for`, and fired (active) ones, so a
    // condition that turns false with time alone (a time-of-day window, an expiring
    // window) re-arms the rule without waiting for another matching fact.
    if (inst.since !== null || inst.active) this.pending.add(inst);
    else this.pending.delete(inst);
    const idle = !inst.active && inst.since === null && (inst.lastFired === null || now >= inst.lastFired + inst.rule.cooldownMs);
    if (idle) inst.rule.instances.delete(inst.key);
  }
}
