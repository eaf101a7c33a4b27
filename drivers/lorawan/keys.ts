// Resolving key references from the site file: inline hex, { env: NAME } or { file: PATH }.
// The key itself never appears in an error message or a log line.
import { readFileSync } from 'node:fs';
import type { KeyRef } from './schema.js';

export function resolveKey(ref: KeyRef, what: string): Buffer {
  let hex: string | undefined;
  if (typeof ref === 'string') hex = ref;
  else if ('env' in ref) {
    hex = process.env[ref.env]?.trim();
    if (!hex) throw new Error(`${what}: environment variable ${ref.env} is not set`);
  } else {
    try {
      hex = readFileSync(ref.file, 'utf8').trim();
    } catch (err) {
      throw new Error(`${what}: cannot read ${ref.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
  }
  if (!/^[0-9A-Fa-f]{32}$/.test(hex)) throw new Error(`${what}: not 32 hex digits`);
  return Buffer.from(hex, 'hex');
}

/** Files named by key references (checked for 0600 at start like other secret files). */
export function keyFiles(refs: readonly (KeyRef | undefined)[], what: string): { path: string; what: string }[] {
  return refs.flatMap((r) => (r && typeof r === 'object' && 'file' in r ? [{ path: r.file, what }] : []));
}
