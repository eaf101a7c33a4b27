// What a sandboxed codec hands back is checked here, on the host, before anyone uses it.
// The engine side already turned the result into JSON (only JSON values survive that);
// this side bounds its size and depth, refuses `__proto__` keys (a later Object.assign
// would turn them into a prototype) and checks the shape of the ChirpStack/TTN result.
import { CodecError, MAX_DOWNLINK_BYTES, type DecodeResult, type EncodeResult } from './types.js';

/** Serialised result, in UTF-16 units (what the engine measures). */
export const MAX_RESULT_CHARS = 64 * 1024;
export const MAX_DEPTH = 32;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Depth and key check; returns the problem or undefined. */
function checkTree(v: unknown, depth: number, path: string): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} at ${path}`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = checkTree(v[i], depth + 1, `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, child] of Object.entries(v)) {
    if (k === '__proto__') return `key "__proto__" at ${path}`;
    const p = checkTree(child, depth + 1, `${path}.${k}`);
    if (p) return p;
  }
  return undefined;
}

function strings(codec: string, fn: string, r: Obj, key: 'warnings' | 'errors'): string[] {
  const v = r[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    throw new CodecError('bad_result', `codec ${codec}: ${fn} returned ${key} that is not an array of strings`);
  }
  return v;
}

function parse(codec: string, fn: string, json: string): Obj {
  const bad = (why: string) => new CodecError('bad_result', `codec ${codec}: ${fn} ${why}`);
  if (json.length > MAX_RESULT_CHARS) throw bad(`returned ${json.length} characters of JSON, over ${MAX_RESULT_CHARS}`);
  let r: unknown;
  try {
    r = JSON.parse(json);
  } catch {
    throw bad('returned something that is not JSON');
  }
  if (!isObj(r)) throw bad('did not return an object');
  const problem = checkTree(r, 0, 'result');
  if (problem) throw bad(`returned a result ${problem}`);
  return r;
}

export function toDecodeResult(codec: string, json: string): DecodeResult {
  const r = parse(codec, 'decodeUplink', json);
  const warnings = strings(codec, 'decodeUplink', r, 'warnings');
  const errors = strings(codec, 'decodeUplink', r, 'errors');
  // TTN lets a failed decode return only `errors`.
  if (r.data === undefined && errors.length > 0) return { data: {}, warnings, errors };
  if (!isObj(r.data)) throw new CodecError('bad_result', `codec ${codec}: decodeUplink returned no data object`);
  return { data: r.data, warnings, errors };
}

export function toEncodeResult(codec: string, json: string): EncodeResult {
  const r = parse(codec, 'encodeDownlink', json);
  const warnings = strings(codec, 'encodeDownlink', r, 'warnings');
  const errors = strings(codec, 'encodeDownlink', r, 'errors');
  const bad = (why: string) => new CodecError('bad_result', `codec ${codec}: encodeDownlink ${why}`);
  let bytes = new Uint8Array(0);
  if (r.bytes !== undefined || errors.length === 0) {
    const b = r.bytes;
    if (!Array.isArray(b)) throw bad('returned no bytes array');
    if (b.length > MAX_DOWNLINK_BYTES) throw bad(`returned ${b.length} bytes, over ${MAX_DOWNLINK_BYTES}`);
    const i = b.findIndex((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255);
    if (i >= 0) throw bad(`returned bytes[${i}] = ${JSON.stringify(b[i])}, not an integer 0-255`);
    bytes = Uint8Array.from(b as number[]);
  }
  const out: EncodeResult = { bytes, warnings, errors };
  if (r.fPort !== undefined) {
    const p = r.fPort;
    // 0 is the MAC port, 224 and above are reserved.
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 223) throw bad(`returned fPort ${JSON.stringify(p)}, not 1-223`);
    out.fPort = p;
  }
  return out;
}
