// Loads a YAML site file, validates it against config/schema.ts, fills in defaults and
// reports every problem as `file:line:col path: message` so an installer can jump to it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isNode, type Document, type Node } from 'yaml';
import { SiteConfigSchema, type SiteConfig } from '../config/schema.js';
import { cronError } from './rules/schedule.js';
import type { Condition } from './rules/schema.js';
import { planRequests } from '../drivers/modbus/planner.js';
import { resolvePoints } from '../drivers/modbus/points.js';

// Compiled code lives in dist/gateway, sources in gateway/: the repo root is one or two up.
const here = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_ROOT = [join(here, '..', '..'), join(here, '..')].find((d) =>
  existsSync(join(d, 'package.json')),
) ?? join(here, '..', '..');
export const DEFAULT_CONFIG_PATH = join(PACKAGE_ROOT, 'config', 'default.yaml');

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path ? p.path + ': ' : ''}${p.message}`;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true, discriminator: true });
const validateSite = ajv.compile<SiteConfig>(SiteConfigSchema);

export function loadConfigFile(path: string): SiteConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file: path, line: 0, col: 0, path: '', message: reason }]);
  }
  return parseConfig(text, path);
}

/** Parses and validates config text; `file` is only used to label errors. */
export function parseConfig(text: string, file: string): SiteConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: '', message: firstLine(e.message) };
      }),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  const problems = validateSite(data)
    ? crossChecks(data).map((c) => locate(doc, lines, file, c.path, c.message))
    : dedupe(validateSite.errors ?? []).map((e) => toProblem(e, doc, lines, file));
  if (problems.length === 0) return data as SiteConfig;
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(problems);
}

/** Rules JSON Schema cannot express: ids and credentials must be unique across the site. */
function crossChecks(cfg: SiteConfig): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const firstSeen = (seen: Map<string, number>, key: string, i: number, path: (string | number)[], what: string) => {
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, i);
    else out.push({ path, message: `${what} "${key}" is already used by devices[${prev}]` });
  };
  const ids = new Map<string, number>();
  const users = new Map<string, number>();
  cfg.devices.forEach((d, i) => {
    firstSeen(ids, d.id, i, ['devices', i, 'id'], 'device id');
    if (d.mqtt) firstSeen(users, d.mqtt.username, i, ['devices', i, 'mqtt', 'username'], 'MQTT username');
  });
  const { mqtt } = cfg.drivers;
  if (mqtt.maxReadingsPerMessage > cfg.store.maxQueueRows) {
    out.push({
      path: ['drivers', 'mqtt', 'maxReadingsPerMessage'],
      message: `must not exceed store.maxQueueRows (${cfg.store.maxQueueRows}), or such a message could never be stored`,
    });
  }
  const lineIds = new Map<string, number>();
  cfg.drivers.modbus.lines.forEach((l, i) => {
    const prev = lineIds.get(l.id);
    if (prev !== undefined) out.push({ path: ['drivers', 'modbus', 'lines', i, 'id'], message: `line id "${l.id}" is already used by lines[${prev}]` });
    else lineIds.set(l.id, i);
  });
  cfg.devices.forEach((d, i) => {
    if (!d.modbus) return;
    if (!lineIds.has(d.modbus.line)) {
      const known = [...lineIds.keys()].join(', ') || 'none defined';
      out.push({ path: ['devices', i, 'modbus', 'line'], message: `unknown Modbus line "${d.modbus.line}" (drivers.modbus.lines: ${known})` });
    }
    const { points, problems } = resolvePoints(d.modbus);
    for (const p of problems) out.push({ path: ['devices', i, 'modbus', ...p.path], message: p.message });
    if (problems.length > 0) return;
    try {
      planRequests(points, d.modbus); // a point wider than one request can never be read
    } catch (err) {
      out.push({ path: ['devices', i, 'modbus'], message: (err as Error).message });
    }
  });
  const lockIds = new Set<string>();
  cfg.locks.forEach((l, i) => {
    if (lockIds.has(l.id)) out.push({ path: ['locks', i, 'id'], message: `lock id "${l.id}" is used twice` });
    lockIds.add(l.id);
    const dev = cfg.devices.find((d) => d.id === l.device);
    if (!dev) return out.push({ path: ['locks', i, 'device'], message: `unknown device "${l.device}"` });
    if (l.modbusPoint !== undefined) {
      const point = dev.modbus?.points.find((p) => p.name === l.modbusPoint);
      if (!point || point.table !== 'coil' || !point.writable) {
        out.push({ path: ['locks', i, 'modbusPoint'], message: `"${l.modbusPoint}" must be a writable coil point of device "${l.device}"` });
      }
    } else if (!dev.mqtt) {
      out.push({ path: ['locks', i, 'device'], message: `device "${l.device}" has no MQTT credentials: give it mqtt, or set modbusPoint` });
    }
    if (l.unlockSeconds > l.maxUnlockSeconds) out.push({ path: ['locks', i, 'unlockSeconds'], message: 'must not exceed maxUnlockSeconds' });
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
        out.push({ path: ['rules', i, 'when', series, 'zone'], message: `no device is in zone "${filter.zone}" (zones: ${[...zones].join(', ') || 'none'})` });
      }
      for (const [k, tag] of (filter.tags ?? []).entries()) {
        if (!cfg.devices.some((d) => d.tags.includes(tag))) out.push({ path: ['rules', i, 'when', series, 'tags', k], message: `no device has tag "${tag}"` });
      }
    }
    if (r.when.schedule !== undefined) {
      const err = cronError(r.when.schedule, cfg.timezone);
      if (err) out.push({ path: ['rules', i, 'when', 'schedule'], message: `not a cron expression: ${err}` });
    }
    r.then.forEach((a, j) => {
      const at = ['rules', i, 'then', j];
      if (a.write && !cfg.devices.some((d) => d.id === a.write!.device)) out.push({ path: [...at, 'write', 'device'], message: `unknown device "${a.write.device}"` });
      for (const [k, id] of (a.lock?.locks ?? []).entries()) {
        if (!lockIds.has(id)) out.push({ path: [...at, 'lock', 'locks', k], message: `unknown lock "${id}"` });
      }
      if (a.lock?.group !== undefined && !lockGroups.has(a.lock.group)) out.push({ path: [...at, 'lock', 'group'], message: `no lock is in group "${a.lock.group}"` });
      if (a.lock && !a.lock.locks && a.lock.group === undefined) out.push({ path: [...at, 'lock'], message: 'name locks: [...] or a group' });
      if (a.badge && !lockIds.has(a.badge.lock)) out.push({ path: [...at, 'badge', 'lock'], message: `unknown lock "${a.badge.lock}"` });
      if (a.badge && !(a.badge.list in cfg.allowLists)) {
        out.push({ path: [...at, 'badge', 'list'], message: `unknown allow-list "${a.badge.list}" (allowLists: ${Object.keys(cfg.allowLists).join(', ') || 'none'})` });
      }
    });
  });
  try {
    new Intl.DateTimeFormat('en', { timeZone: cfg.timezone });
  } catch {
    out.push({ path: ['timezone'], message: `unknown time zone "${cfg.timezone}" (use an IANA name such as Europe/Berlin)` });
  }
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

function locate(doc: Document, lines: LineCounter, file: string, path: (string | number)[], message: string): ConfigProblem {
  const pos = lines.linePos(nodeAt(doc, path)?.range?.[0] ?? 0);
  return { file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

// anyOf failures repeat the same place many times; keep the most specific message.
function dedupe(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === 'anyOf') return false;
    const key = e.instancePath + '|' + e.keyword + '|' + JSON.stringify(e.params);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

function toProblem(e: ErrorObject, doc: Document, lines: LineCounter, file: string): ConfigProblem {
  const path = pointerToPath(e.instancePath);
  let node = nodeAt(doc, path);
  let shownPath = path;
  let message = e.message ?? 'is invalid';
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      shownPath = [...path, key];
      node = keyNodeOf(node, key) ?? node;
      const hint = closest(key, knownKeys(e.parentSchema));
      message = `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`;
      break;
    }
    case 'required':
      message = `missing required key "${String(params.missingProperty)}"`;
      break;
    case 'type':
      message = `must be ${article(String(params.type))} ${String(params.type)}`;
      break;
    case 'discriminator': {
      const options = ((e.parentSchema as { oneOf?: { properties: Record<string, { const?: string }> }[] }).oneOf ?? [])
        .map((o) => o.properties[String(params.tag)]?.const)
        .filter(Boolean);
      message = `"${String(params.tag)}" must be one of: ${options.join(', ')}`;
      break;
    }
    case 'maxProperties':
    case 'minProperties': {
      const what = (e.parentSchema as { description?: string } | undefined)?.description;
      message = what ? `must have ${what}` : message;
      break;
    }
    case 'enum':
      message = `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'pattern': {
      const what = (e.parentSchema as { description?: string } | undefined)?.description;
      message = what ? `is not valid here: expected ${what}` : `does not match the expected form ${String(params.pattern)}`;
      break;
    }
  }
  const pos = lines.linePos(node?.range?.[0] ?? 0);
  return { file, line: pos.line, col: pos.col, path: formatPath(shownPath), message };
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  // Walk down while nodes exist, so a missing leaf still points at its nearest parent.
  for (let n = path.length; n >= 0; n--) {
    const found: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(found)) return found;
  }
  return undefined;
}

function keyNodeOf(node: Node | undefined, key: string): Node | undefined {
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isNode(pair.key) && String((pair.key as { value?: unknown }).value) === key) return pair.key;
  }
  return undefined;
}

function knownKeys(schema: unknown): string[] {
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props) : [];
}

/** The known key nearest to a typo, if it is plausibly the same word. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

