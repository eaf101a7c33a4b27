// The one option parser of every bench: each camelCase key of a spec is a `--kebab-case`
// string flag; parsing is strict (an unknown flag or a positional is a usage error) and every
// value is checked against its spec, so a bench reads typed, in-range options or exits 2.
import { parseArgs } from 'node:util';

/** Bad arguments: run.ts prints the message alone and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Opt<T> {
  /** How the value looks in the usage line. */
  hint: string;
  /** Read when the flag is absent (e.g. BENCH_SECONDS). */
  env?: string;
  parse(flag: string, raw: string | undefined): T;
}

function checked(flag: string, raw: string, min: number, max: number, integer: boolean): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${raw}"`);
  }
  return n;
}

const numeric =
  (integer: boolean) =>
  (def: number, min: number, max: number, env?: string): Opt<number> => ({
    hint: 'N',
    env,
    parse: (flag, raw) => (raw === undefined ? def : checked(flag, raw, min, max, integer)),
  });
export const num = numeric(false);
export const int = numeric(true);

/** Comma-separated integers in [1, max], deduplicated and ascending. */
export const ints = (def: number[], max: number): Opt<number[]> => ({
  hint: 'N,N',
  parse: (flag, raw) =>
    raw === undefined ? def : [...new Set(raw.split(',').map((s) => checked(flag, s.trim(), 1, max, true)))].sort((a, b) => a - b),
});

export const str = (def: string): Opt<string> => ({ hint: 'S', parse: (_flag, raw) => raw ?? def });

/** `--only a,b`: a subset of the bench's scenarios, in the bench's order; null = all. */
export const only = <T extends string>(names: readonly T[]): Opt<T[] | null> => ({
  hint: names.join(','),
  parse(flag, raw) {
    if (raw === undefined) return null;
    const asked = raw.split(/\s*,\s*/).filter(Boolean);
    const unknown = asked.filter((n) => !(names as readonly string[]).includes(n));
    if (unknown.length || !asked.length)
      throw new UsageError(`--${flag}: unknown scenario(s) "${unknown.join(', ')}"; known: ${names.join(', ')}`);
    return names.filter((n) => asked.includes(n));
  },
});

export type Options<S> = { [K in keyof S]: S[K] extends Opt<infer T> ? T : never };

const flagOf = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Parses `args` against `spec`; a usage error names the bench's flags. */
export function parseOptions<S extends Record<string, Opt<unknown>>>(bench: string, args: string[], spec: S): Options<S> {
  const flags = Object.entries(spec).map(([k, o]) => `[--${flagOf(k)} ${o.hint}]`);
  const usage = `usage: npm run bench -- ${bench} ${flags.join(' ')}`;
  try {
    const { values } = parseArgs({
      args,
      strict: true,
      options: Object.fromEntries(Object.keys(spec).map((k) => [flagOf(k), { type: 'string' as const }])),
    });
    const raw = values as Record<string, string | undefined>;
    return Object.fromEntries(
      Object.entries(spec).map(([k, o]) => [k, o.parse(flagOf(k), raw[flagOf(k)] ?? (o.env ? process.env[o.env] : undefined))]),
    ) as Options<S>;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(`${e.message}\n${usage}`);
    throw err;
  }
}
