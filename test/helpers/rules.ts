// Shared by the rule-engine tests: rules loaded through the site schema (validation +
// defaults, as the gateway does), fact builders, and compact firing lists.
import { stringify } from 'yaml';
import { parseConfig } from '../../config/site.js';
import { RuleEngine, type Fact, type Firing } from '../../gateway/rules/engine.js';
import type { RuleConfig } from '../../config/rules-schema.js';

export type Obj = Record<string, unknown>;
export const M = 60_000;
export const T0 = Date.UTC(2026, 0, 5, 12); // a Monday, 12:00 UTC
export const ALERT = [{ alert: { severity: 'high', message: 'm' } }];
export const DEFAULT_DEVICES: Obj[] = [{ id: 'hvac', zone: 'z' }];

export function load(rules: Obj[], devices: Obj[] = DEFAULT_DEVICES): RuleConfig[] {
  const site = { site: 't', devices, rules: rules.map((r) => ({ then: ALERT, ...r })) };
  const yaml = stringify(site, { aliasDuplicateObjects: false });
  return parseConfig(yaml, 'rules.yaml').rules;
}

/** An engine over rules (and devices, whose zone/tags the engine is told), as the gateway builds it. */
export function engine(rules: Obj[], timezone = 'UTC', devices: Obj[] = DEFAULT_DEVICES): RuleEngine {
  const cfg = load(rules, devices);
  const infos = devices.map((d) => ({ id: String(d.id), zone: String(d.zone), tags: (d.tags as string[] | undefined) ?? [] }));
  return new RuleEngine(cfg, { timezone, devices: infos });
}

export const rd = (ts: number, device: string, point: string, value: number | boolean | string): Fact => ({
  kind: 'reading',
  reading: { ts, device, point, value },
});
export const ev = (ts: number, type: string, subject?: string, data?: unknown): Fact => ({
  kind: 'event',
  event: { id: `e${ts}`, ts, type, source: 'test', ...(subject ? { subject } : {}), ...(data !== undefined ? { data } : {}) },
});
export const on = (device: string, point: string) => ({ reading: { device, point } });
/** `rule@minutes` (plus the instance key when asked): compact firing lists. */
export const names = (fs: Firing[], key = false) => fs.map((f) => `${f.rule}@${(f.ts - T0) / M}${key ? ` ${f.key}` : ''}`);
