// Loads a YAML site file, validates it against config/schema.ts, fills in defaults and
// checks what the schema cannot (unique ids, references between sections — each driver's
// own checks come from its descriptor); problems are reported as
// `file:line:col path: message` (gateway/kernel/yaml-config.ts).
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../gateway/kernel/package.js';
import { Ajv } from 'ajv';
import { DRIVERS } from '../drivers/index.js';
import type { AnyDriverDescriptor } from '../gateway/contract/descriptor.js';
import { SiteConfigSchema, type SiteConfig } from './schema.js';
import { cronError, type Condition } from './rules-schema.js';
import { checkView, driverSection, driversOfDevice } from './views.js';
import { parseYamlConfig, readConfigText, type CrossCheckProblem } from '../gateway/kernel/yaml-config.js';
export { ConfigError, formatPath, formatProblem, type ConfigProblem } from '../gateway/kernel/yaml-config.js';

export { PACKAGE_ROOT };
export const DEFAULT_CONFIG_PATH = join(PACKAGE_ROOT, 'config', 'default.yaml');

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true, discriminator: true });
const validateSite = ajv.compile<SiteConfig>(SiteConfigSchema);

export function loadConfigFile(path: string): SiteConfig {
  return parseConfig(readConfigText(path), path);
}

/** Parses and validates config text; `file` is only used to label errors. */
export function parseConfig(text: string, file: string): SiteConfig {
  return parseYamlConfig(text, file, validateSite, crossChecks);
}

/** Rules JSON Schema cannot express: ids and credentials must be unique across the site. */
function crossChecks(cfg: SiteConfig): CrossCheckProblem[] {
  const out: CrossCheckProblem[] = [];
  const firstSeen = (seen: Map<string, number>, key: string, i: number, path: (string | number)[], what: string) => {
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, i);
    else out.push({ path, message: `${what} "${key}" is already used by devices[${prev}]` });
  };
  const ids = new Map<string, number>();
  cfg.devices.forEach((d, i) => firstSeen(ids, d.id, i, ['devices', i, 'id'], 'device id'));
  const registry: readonly AnyDriverDescriptor[] = DRIVERS;
  for (const d of registry) out.push(...(d.checks?.(driverSection(d, cfg), checkView(d, cfg)) ?? []));
  const lockIds = new Set<string>();
  cfg.locks.forEach((l, i) => {
    if (lockIds.has(l.id)) out.push({ path: ['locks', i, 'id'], message: `lock id "${l.id}" is used twice` });
    lockIds.add(l.id);
    const dev = cfg.devices.find((d) => d.id === l.device);
    if (!dev) return out.push({ path: ['locks', i, 'device'], message: `unknown device "${l.device}"` });
    const drivers = driversOfDevice(registry, dev);
    if (l.modbusPoint !== undefined) {
      const point = drivers.map(({ driver, section }) => driver.points?.(section).get(l.modbusPoint!)).find((p) => p !== undefined);
      if (!point || !point.boolean || !point.writable) {
        out.push({
          path: ['locks', i, 'modbusPoint'],
          message: `"${l.modbusPoint}" must be a writable coil point of device "${l.device}"`,
        });
      }
    } else if (!drivers.some(({ driver }) => driver.takesLockCommands)) {
      out.push({ path: ['locks', i, 'device'], message: `device "${l.device}" has no MQTT credentials: give it mqtt, or set modbusPoint` });
    }
    if (l.unlockSeconds > l.maxUnlockSeconds)
      out.push({ path: ['locks', i, 'unlockSeconds'], message: 'must not exceed maxUnlockSeconds' });
  });
  const ruleIds = new Map<string, number>();
  const lockGroups = new Set(cfg.locks.map((l) => l.group));
  cfg.rules.forEach((r, i) => {
    const prev = ruleIds.get(r.id);
    if (prev !== undefined) out.push({ path: ['rules', i, 'id'], message: `rule id "${r.id}" is already used by rules[${prev}]` });
    else ruleIds.set(r.id, i);
    if (r.when.event || r.when.schedule !== undefined) {
      for (const [path, w] of windowsIn(r.if, ['rules', i, 'if'])) {
        if (w.device === undefined || w.point === undefined) {
          out.push({ path, message: 'an event-triggered rule has no reading series of its own: name both device and point' });
        }
      }
    }
    const series = r.when.reading ? 'reading' : r.when.change ? 'change' : null;
    const filter = r.when.reading ?? r.when.change;
    if (series && filter) {
      // Readings get zone and tags only from devices:, so a filter nothing carries is a typo.
      const zones = new Set(cfg.devices.map((d) => d.zone));
      if (filter.zone !== undefined && !filter.zone.includes('*') && !zones.has(filter.zone)) {
        out.push({
          path: ['rules', i, 'when', series, 'zone'],
          message: `no device is in zone "${filter.zone}" (zones: ${[...zones].join(', ') || 'none'})`,
        });
      }
      for (const [k, tag] of (filter.tags ?? []).entries()) {
        if (!cfg.devices.some((d) => d.tags.includes(tag)))
          out.push({ path: ['rules', i, 'when', series, 'tags', k], message: `no device has tag "${tag}"` });
      }
    }
    if (r.when.schedule !== undefined) {
      const err = cronError(r.when.schedule, cfg.timezone);
      if (err) out.push({ path: ['rules', i, 'when', 'schedule'], message: `not a cron expression: ${err}` });
    }
    r.then.forEach((a, j) => {
      const at = ['rules', i, 'then', j];
      if (a.write && !cfg.devices.some((d) => d.id === a.write!.device))
        out.push({ path: [...at, 'write', 'device'], message: `unknown device "${a.write.device}"` });
      for (const [k, id] of (a.lock?.locks ?? []).entries()) {
        if (!lockIds.has(id)) out.push({ path: [...at, 'lock', 'locks', k], message: `unknown lock "${id}"` });
      }
      if (a.lock?.group !== undefined && !lockGroups.has(a.lock.group))
        out.push({ path: [...at, 'lock', 'group'], message: `no lock is in group "${a.lock.group}"` });
      if (a.lock && !a.lock.locks && a.lock.group === undefined)
        out.push({ path: [...at, 'lock'], message: 'name locks: [...] or a group' });
      if (a.webhook && (a.webhook.url === undefined) === (a.webhook.endpoint === undefined))
        out.push({ path: [...at, 'webhook'], message: 'give exactly one of url and endpoint' });
      if (a.webhook?.endpoint !== undefined && !cfg.webhooks.endpoints.some((e) => e.id === a.webhook!.endpoint)) {
        out.push({ path: [...at, 'webhook', 'endpoint'], message: `unknown webhook endpoint "${a.webhook.endpoint}"` });
      }
      if (a.badge && !lockIds.has(a.badge.lock)) out.push({ path: [...at, 'badge', 'lock'], message: `unknown lock "${a.badge.lock}"` });
      if (a.badge && !(a.badge.list in cfg.allowLists)) {
        out.push({
          path: [...at, 'badge', 'list'],
          message: `unknown allow-list "${a.badge.list}" (allowLists: ${Object.keys(cfg.allowLists).join(', ') || 'none'})`,
        });
      }
    });
  });
  try {
    new Intl.DateTimeFormat('en', { timeZone: cfg.timezone });
  } catch {
    out.push({ path: ['timezone'], message: `unknown time zone "${cfg.timezone}" (use an IANA name such as Europe/Berlin)` });
  }
  const { tls } = cfg.http;
  if ((tls.cert === undefined) !== (tls.key === undefined)) out.push({ path: ['http', 'tls'], message: 'give cert and key together' });
  if (tls.mode === 'off' && tls.cert !== undefined)
    out.push({ path: ['http', 'tls', 'mode'], message: 'is off, but a cert is given: use mode auto or on' });
  if (tls.redirectPort !== undefined && tls.redirectPort === cfg.http.port)
    out.push({ path: ['http', 'tls', 'redirectPort'], message: 'must differ from http.port' });
  const hookIds = new Set<string>();
  cfg.webhooks.endpoints.forEach((e, i) => {
    if (hookIds.has(e.id)) out.push({ path: ['webhooks', 'endpoints', i, 'id'], message: `webhook endpoint id "${e.id}" is used twice` });
    hookIds.add(e.id);
    if (!URL.canParse(e.url)) out.push({ path: ['webhooks', 'endpoints', i, 'url'], message: `not a URL: "${e.url}"` });
    if ((e.secretEnv === undefined) === (e.secretFile === undefined))
      out.push({ path: ['webhooks', 'endpoints', i], message: 'give exactly one of secretEnv and secretFile' });
  });
  const hashes = new Set<string>();
  cfg.http.tokens.forEach((t, i) => {
    if (hashes.has(t.sha256)) out.push({ path: ['http', 'tokens', i, 'sha256'], message: 'the same token is listed twice' });
    hashes.add(t.sha256);
  });
  return out;
}

const WINDOWED = ['avg', 'min', 'max', 'sum', 'count'] as const;

/** Every windowed condition in a rule's condition tree, with its config path. */
function windowsIn(c: Condition | undefined, path: (string | number)[]): [(string | number)[], { device?: string; point?: string }][] {
  if (!c) return [];
  const out: [(string | number)[], { device?: string; point?: string }][] = [];
  for (const k of WINDOWED) {
    const w = c[k];
    if (w) out.push([[...path, k], w]);
  }
  c.all?.forEach((x, i) => out.push(...windowsIn(x, [...path, 'all', i])));
  c.any?.forEach((x, i) => out.push(...windowsIn(x, [...path, 'any', i])));
  if (c.not) out.push(...windowsIn(c.not, [...path, 'not']));
  return out;
}
