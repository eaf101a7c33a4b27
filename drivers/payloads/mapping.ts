// Mapping foreign JSON to readings, for equipment that cannot change what it sends:
// each point names a path into the document (`a.b[0].c`), with an optional scale,
// offset and unit; the timestamp comes from a path too (epoch ms, epoch s, or ISO 8601),
// else it is the time of receipt. Declarative: validated by the site schema, no code runs.
import { Type, type Static } from '@sinclair/typebox';
import type { Reading } from '../../gateway/contract/types.js';
import { Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';
import { PayloadError } from './telemetry.js';

const PATH_PATTERN = '^[A-Za-z0-9_$@-]+(\\[\\d+\\])*(\\.[A-Za-z0-9_$@-]+(\\[\\d+\\])*)*$';

const PointMap = Strict({
  path: Type.String({ pattern: PATH_PATTERN, description: 'Where the value is, e.g. data.power[0].w' }),
  scale: Type.Optional(Type.Number({ description: 'value × scale + offset' })),
  offset: Type.Optional(Type.Number()),
  unit: Type.Optional(Type.String()),
});

export const MappingSchema = Strict(
  {
    points: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$' }), PointMap, { description: 'Point name → where its value is' }),
    ts: Type.Optional(
      Strict({
        path: Type.String({ pattern: PATH_PATTERN }),
        format: StringEnum(['ms', 's', 'iso'] as const, { default: 'ms' }),
      }),
    ),
    /** A path to an array: the mapping applies to each element (a batch of samples). */
    each: Type.Optional(Type.String({ pattern: PATH_PATTERN, description: 'Apply the mapping to every element of this array' })),
  },
  { description: 'Paths in the device JSON → points' },
);
export type Mapping = Static<typeof MappingSchema>;

/** Segments of `a.b[0].c`: ['a', 'b', 0, 'c']. */
function segments(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) continue;
    out.push(m[1]);
    for (const i of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(i[1]));
  }
  return out;
}

export function pick(doc: unknown, path: string): unknown {
  let v = doc;
  for (const s of segments(path)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[s];
  }
  return v;
}

function timestamp(v: unknown, format: 'ms' | 's' | 'iso', where: string): number {
  const n =
    format === 'iso' ? (typeof v === 'string' ? Date.parse(v) : NaN) : typeof v === 'number' ? v * (format === 's' ? 1000 : 1) : NaN;
  if (!Number.isFinite(n)) throw new PayloadError('bad_timestamp', `${where}: ${JSON.stringify(v)} is not a ${format} timestamp`);
  return n;
}

/** Readings of one document (or of each element of `each`); a missing point is skipped, a wrong type refused. */
export function applyMapping(doc: unknown, m: Mapping, device: string, now: number): Reading[] {
  const items = m.each ? pick(doc, m.each) : [doc];
  if (!Array.isArray(items)) throw new PayloadError('bad_shape', `${m.each}: not an array`);
  const out: Reading[] = [];
  items.forEach((item, i) => {
    const at = m.each ? `${m.each}[${i}]` : '$';
    const ts = m.ts ? timestamp(pick(item, m.ts.path), m.ts.format, `${at}.${m.ts.path}`) : now;
    for (const [point, p] of Object.entries(m.points)) {
      const raw = pick(item, p.path);
      if (raw === undefined || raw === null) continue;
      let value: number | boolean | string;
      if (typeof raw === 'number') value = raw * (p.scale ?? 1) + (p.offset ?? 0);
      else if (typeof raw === 'boolean' || typeof raw === 'string') value = raw;
      else throw new PayloadError('bad_value', `${at}.${p.path}: an object, not a value`);
      out.push({ ts, device, point, value, ...(p.unit ? { unit: p.unit } : {}) });
    }
  });
  return out;
}
