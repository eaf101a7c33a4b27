// Telemetry payload decoding, for every driver that takes JSON from devices (MQTT
// devices/{site}/{zone}/{device}/telemetry, HTTP push). Accepted forms:
//   {"temp": 21.5, "hum": 40, "ts": 1700000000000}      one object of point → value
//   [{"temp": 21.5, "ts": ...}, {"temp": 21.7, ...}]    an array of such objects
//   [{"bn": "dev1:", "bt": 1.7e9, "n": "temp", "u": "Cel", "v": 21.5}, ...]   SenML JSON
//   21.5   (on .../telemetry/{point})                   a plain number (or true/false)
// A value may also be {"value": 21.5, "unit": "C", "quality": "good"}. A message is
// accepted or rejected whole, so a device never ends up half-recorded.
import type { Quality, Reading, ReadingValue } from '../../gateway/contract/types.js';

export type RejectReason =
  | 'empty'
  | 'invalid_json'
  | 'bad_shape'
  | 'bad_value'
  | 'bad_timestamp'
  | 'bad_senml'
  | 'not_a_number'
  | 'too_many_readings'
  | 'payload_too_large'
  | 'bad_topic';

export class PayloadError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
    this.name = 'PayloadError';
  }
}

export interface DecodeOptions {
  device: string;
  /** From `.../telemetry/{point}`: the payload is one plain value. */
  point?: string;
  now: number;
  maxReadings: number;
}

const MIN_TS = Date.UTC(2000, 0, 1);
const MAX_FUTURE_MS = 86_400_000;
const MAX_STRING = 4096;
const MAX_POINT_NAME = 128;
const QUALITIES = new Set<string>(['good', 'uncertain', 'bad']);
const SENML_RELATIVE_LIMIT = 2 ** 28; // RFC 8428 §4.5.3: smaller times are relative to now
const NUMBER_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

export function decodeTelemetry(payload: Buffer, opts: DecodeOptions): Reading[] {
  if (payload.length === 0) throw new PayloadError('empty', 'empty payload');
  if (opts.point !== undefined) return [decodePlain(payload.toString('utf8').trim(), opts)];
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new PayloadError('invalid_json', `not JSON: ${(err as Error).message}`);
  }
  if (Array.isArray(doc)) {
    if (doc.length > 0 && isSenml(doc[0])) return decodeSenml(doc, opts);
    const out: Reading[] = [];
    doc.forEach((item, i) => decodeObject(item, opts, out, `[${i}]`));
    return out;
  }
  const out: Reading[] = [];
  decodeObject(doc, opts, out, '');
  return out;
}

function decodePlain(text: string, opts: DecodeOptions): Reading {
  checkPointName(opts.point!, '');
  let value: ReadingValue;
  if (NUMBER_RE.test(text)) value = Number(text);
  else if (text === 'true' || text === 'false') value = text === 'true';
  else
    throw new PayloadError('not_a_number', `.../telemetry/${opts.point} expects a plain number or true/false, got "${text.slice(0, 40)}"`);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new PayloadError('bad_value', `value out of range: ${text.slice(0, 40)}`);
  return { ts: opts.now, device: opts.device, point: opts.point!, value };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function decodeObject(item: unknown, opts: DecodeOptions, out: Reading[], where: string): void {
  if (!isObject(item)) throw new PayloadError('bad_shape', `${where || 'payload'} must be an object of point → value`);
  const ts = item.ts === undefined ? opts.now : parseTs(item.ts, `${where}.ts`, opts.now);
  for (const point in item) {
    if (point === 'ts') continue;
    checkPointName(point, where);
    if (out.length >= opts.maxReadings) {
      throw new PayloadError('too_many_readings', `more than ${opts.maxReadings} readings in one message`);
    }
    out.push(toReading(opts.device, point, ts, item[point], `${where}.${point}`));
  }
}

function checkPointName(point: string, where: string): void {
  if (point.length === 0 || point.length > MAX_POINT_NAME) {
    throw new PayloadError('bad_shape', `${where || 'payload'}: point names must be 1-${MAX_POINT_NAME} characters`);
  }
}

function toReading(device: string, point: string, ts: number, raw: unknown, where: string): Reading {
  if (isObject(raw)) {
    const r: Reading = { ts, device, point, value: checkValue(raw.value, `${where}.value`) };
    if (raw.unit !== undefined) {
      if (typeof raw.unit !== 'string') throw new PayloadError('bad_value', `${where}.unit must be a string`);
      r.unit = raw.unit;
    }
    if (raw.quality !== undefined) {
      if (typeof raw.quality !== 'string' || !QUALITIES.has(raw.quality)) {
        throw new PayloadError('bad_value', `${where}.quality must be good, uncertain or bad`);
      }
      r.quality = raw.quality as Quality;
    }
    return r;
  }
  return { ts, device, point, value: checkValue(raw, where) };
}

function checkValue(v: unknown, where: string): ReadingValue {
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v;
  } else if (typeof v === 'boolean') {
    return v;
  } else if (typeof v === 'string') {
    if (v.length <= MAX_STRING) return v;
    throw new PayloadError('bad_value', `${where}: strings are limited to ${MAX_STRING} characters`);
  }
  throw new PayloadError('bad_value', `${where} must be a number, boolean or string, got ${v === null ? 'null' : typeof v}`);
}

/** ms since epoch, or seconds if small enough to be seconds, or an ISO-8601 string. */
function parseTs(v: unknown, where: string, now: number): number {
  let ms: number;
  if (typeof v === 'number') ms = v < 1e11 ? v * 1000 : v;
  else if (typeof v === 'string') ms = Date.parse(v);
  else throw new PayloadError('bad_timestamp', `${where} must be epoch ms, epoch seconds or an ISO-8601 string`);
  return checkTs(ms, where, now);
}

function checkTs(ms: number, where: string, now: number): number {
  if (!Number.isFinite(ms) || ms < MIN_TS || ms > now + MAX_FUTURE_MS) {
    throw new PayloadError('bad_timestamp', `${where} is not a plausible time (must be after 2000 and at most a day ahead)`);
  }
  return ms;
}

function isSenml(first: unknown): boolean {
  return isObject(first) && (typeof first.n === 'string' || typeof first.bn === 'string' || typeof first.bt === 'number');
}

// RFC 8428 SenML JSON. Base fields carry forward to later records. The device comes
// from the topic, so a record's point is its `n` (or the base name when `n` is absent).
function decodeSenml(records: unknown[], opts: DecodeOptions): Reading[] {
  const out: Reading[] = [];
  let bn = '';
  let bt = 0;
  let bu: string | undefined;
  let bv = 0;
  records.forEach((rec, i) => {
    const where = `[${i}]`;
    if (!isObject(rec)) throw new PayloadError('bad_senml', `${where} must be a SenML record object`);
    if (rec.bn !== undefined) bn = senmlField(rec.bn, 'string', `${where}.bn`);
    if (rec.bt !== undefined) bt = senmlField(rec.bt, 'number', `${where}.bt`);
    if (rec.bu !== undefined) bu = senmlField(rec.bu, 'string', `${where}.bu`);
    if (rec.bv !== undefined) bv = senmlField(rec.bv, 'number', `${where}.bv`);
    const n = rec.n === undefined ? '' : senmlField(rec.n, 'string', `${where}.n`);
    let value: ReadingValue;
    if (rec.v !== undefined) value = senmlField(rec.v, 'number', `${where}.v`) + bv;
    else if (rec.vs !== undefined) value = senmlField(rec.vs, 'string', `${where}.vs`);
    else if (rec.vb !== undefined) value = senmlField(rec.vb, 'boolean', `${where}.vb`);
    else if (rec.vd !== undefined) value = senmlField(rec.vd, 'string', `${where}.vd`);
    else if (rec.s !== undefined) value = senmlField(rec.s, 'number', `${where}.s`);
    else if (rec.n === undefined && hasBaseField(rec))
      return; // a record carrying only base fields
    else throw new PayloadError('bad_senml', `${where} has no value (v, vs, vb, vd or s)`);
    const t = bt + (rec.t === undefined ? 0 : senmlField(rec.t, 'number', `${where}.t`));
    const ms = Math.abs(t) < SENML_RELATIVE_LIMIT ? opts.now + t * 1000 : t * 1000;
    const point = n || bn;
    checkPointName(point, where);
    if (out.length >= opts.maxReadings)
      throw new PayloadError('too_many_readings', `more than ${opts.maxReadings} readings in one message`);
    const r: Reading = { ts: checkTs(ms, `${where}.t`, opts.now), device: opts.device, point, value: checkValue(value, where) };
    const unit = rec.u === undefined ? bu : senmlField(rec.u, 'string', `${where}.u`);
    if (unit !== undefined) r.unit = unit;
    out.push(r);
  });
  return out;
}

function hasBaseField(rec: Record<string, unknown>): boolean {
  return rec.bn !== undefined || rec.bt !== undefined || rec.bu !== undefined || rec.bv !== undefined || rec.bver !== undefined;
}

function senmlField<T extends 'string' | 'number' | 'boolean'>(
  v: unknown,
  type: T,
  where: string,
): T extends 'string' ? string : T extends 'number' ? number : boolean {
  if (typeof v !== type || (type === 'number' && !Number.isFinite(v))) {
    throw new PayloadError('bad_senml', `${where} must be a ${type}`);
  }
  return v as T extends 'string' ? string : T extends 'number' ? number : boolean;
}
