// Validation of office commands before they are queued: a malformed command must be
// refused at the office (400 naming the field), not discovered on the gateway later.
import type { CloudCommand } from '../protocol.js';
import { CloudRequestError } from './store.js';

const fail = (message: string) => new CloudRequestError(400, message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(args: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(args).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw fail(`args.${extra[0]}: unknown key (allowed: ${allowed.join(', ')})`);
}

function nonEmptyString(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== 'string' || v === '') throw fail(`args.${key}: must be a non-empty string`);
  return v;
}

/** Returns the args as they will be sent; throws CloudRequestError(400) otherwise. */
export function validateCommand(kind: unknown, args: unknown): { kind: CloudCommand['kind']; args: Record<string, unknown> } {
  if (!isObject(args)) throw fail('args: must be an object');
  if (kind === 'lock') {
    onlyKeys(args, ['lock', 'action', 'seconds']);
    const lock = nonEmptyString(args, 'lock');
    if (args.action !== 'lock' && args.action !== 'unlock') throw fail('args.action: must be "lock" or "unlock"');
    const out: Record<string, unknown> = { lock, action: args.action };
    if (args.seconds !== undefined) {
      if (typeof args.seconds !== 'number' || !Number.isSafeInteger(args.seconds) || args.seconds < 0)
        throw fail('args.seconds: must be an integer >= 0');
      out.seconds = args.seconds;
    }
    return { kind, args: out };
  }
  if (kind === 'write') {
    onlyKeys(args, ['device', 'point', 'value']);
    const device = nonEmptyString(args, 'device');
    const point = nonEmptyString(args, 'point');
    const v = args.value;
    if (!(typeof v === 'boolean' || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) {
      throw fail('args.value: must be a number, boolean or string');
    }
    return { kind, args: { device, point, value: v } };
  }
  throw fail('kind: must be "lock" or "write"');
}
