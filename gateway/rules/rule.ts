// Compiled rules, their per-instance state, and the trigger index that finds the rules a
// fact concerns without scanning them all: exact device+point triggers sit in a map, glob
// triggers in a short list of pre-compiled RegExps.
import type { ReadingValue } from '../contract/types.js';
import { globRegExp, isGlob } from './compare.js';
import { compileCondition, type Host, type Needs, type Pred, type SeriesView } from './conditions.js';
import type { DeviceMatch } from './devices.js';
import { durationMs, type RuleConfig } from '../../config/rules-schema.js';

export interface CompiledRule {
  idx: number; // position in the config: firings of one fact come out in this order
  id: string;
  cfg: RuleConfig;
  event: boolean; // event-triggered (else reading-triggered)
  cond: Pred | null; // null: no `if`, always true and not edge-triggered
  clear: Pred | null;
  forMs: number;
  cooldownMs: number;
  subject: RegExp | null; // event trigger's subject glob
  filter: DeviceMatch | null; // trigger's zone/tags filter
  change: { from?: ReadingValue; to?: ReadingValue } | null; // state-change trigger
  instances: Map<string, Instance>;
}

/** One rule's state for one instance key; only instances with something to remember exist. */
export interface Instance {
  rule: CompiledRule;
  key: string;
  since: number | null; // condition true since (armed and waiting for `for` or cooldown)
  active: boolean; // fired, waiting to be re-armed
  lastFired: number | null;
  ts: number; // last evaluated
  device?: string;
  point?: string;
  value?: ReadingValue;
  previous?: ReadingValue;
  zone?: string; // a zone named by the triggering event itself
  type?: string;
  subject?: string;
}

/** Engine-side series record: latest value, window samples, and the rules it triggers. */
export interface Series extends SeriesView {
  key: string; // instance key of reading rules: device/point
  rules: CompiledRule[];
  keepMs: number; // sample retention: the largest window naming this series (0: none)
}

export function compileRule(cfg: RuleConfig, idx: number, host: Host, needs: Needs): CompiledRule {
  const at = `rules[${idx}] (${cfg.id})`;
  const trigger = cfg.when;
  const series = trigger.reading ?? trigger.change;
  const filterCfg = series ?? trigger.event;
  const filter = filterCfg ? host.devices.compile({ zone: filterCfg.zone, tags: filterCfg.tags }) : null;
  const change = trigger.change
    ? {
        ...(trigger.change.from !== undefined ? { from: trigger.change.from } : {}),
        ...(trigger.change.to !== undefined ? { to: trigger.change.to } : {}),
      }
    : null;
  return {
    idx,
    id: cfg.id,
    cfg,
    event: trigger.event !== undefined,
    cond: cfg.if ? compileCondition(cfg.if, trigger, host, needs, `${at}.if`) : null,
    clear: cfg.clear ? compileCondition(cfg.clear, trigger, host, needs, `${at}.clear`) : null,
    forMs: cfg.for ? durationMs(cfg.for) : 0,
    cooldownMs: cfg.cooldown ? durationMs(cfg.cooldown) : 0,
    subject: trigger.event?.subject !== undefined ? globRegExp(trigger.event.subject) : null,
    filter,
    change,
    instances: new Map(),
  };
}

const byIdx = (a: CompiledRule, b: CompiledRule) => a.idx - b.idx;
const CACHE_LIMIT = 10_000;

export class TriggerIndex {
  private readonly exact = new Map<string, Map<string, CompiledRule[]>>();
  private readonly globs: { rule: CompiledRule; device: RegExp; point: RegExp }[] = [];
  private readonly eventExact = new Map<string, CompiledRule[]>();
  private readonly eventGlobs: { rule: CompiledRule; type: RegExp }[] = [];
  private readonly eventCache = new Map<string, CompiledRule[]>();

  constructor(rules: readonly CompiledRule[]) {
    for (const rule of rules) {
      const { event } = rule.cfg.when;
      const reading = rule.cfg.when.reading ?? rule.cfg.when.change;
      if (reading) {
        const device = reading.device ?? '*';
        const point = reading.point ?? '*';
        if (isGlob(device) || isGlob(point)) this.globs.push({ rule, device: globRegExp(device), point: globRegExp(point) });
        else
          push(
            getOrSet(this.exact, device, () => new Map<string, CompiledRule[]>()),
            point,
            rule,
          );
      } else if (event) {
        if (isGlob(event.type)) this.eventGlobs.push({ rule, type: globRegExp(event.type) });
        else push(this.eventExact, event.type, rule);
      }
    }
  }

  /**
   * Rules triggered by a reading (or change) of this series, in config order, with the
   * trigger's zone/tags filter already applied. The engine caches it per series.
   */
  forReading(device: string, point: string): CompiledRule[] {
    const out = [...(this.exact.get(device)?.get(point) ?? [])];
    for (const g of this.globs) if (g.device.test(device) && g.point.test(point)) out.push(g.rule);
    return out.filter((r) => !r.filter || r.filter(device, undefined)).sort(byIdx);
  }

  /** Rules whose trigger type matches (the subject glob is checked per event). */
  forEvent(type: string): CompiledRule[] {
    let out = this.eventCache.get(type);
    if (!out) {
      out = [...(this.eventExact.get(type) ?? [])];
      for (const g of this.eventGlobs) if (g.type.test(type)) out.push(g.rule);
      out.sort(byIdx);
      if (this.eventCache.size >= CACHE_LIMIT) this.eventCache.clear();
      this.eventCache.set(type, out);
    }
    return out;
  }
}

function getOrSet<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  getOrSet(m, k, () => []).push(v);
}
