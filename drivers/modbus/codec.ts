// Register ⇄ value conversion for Modbus points. Pure functions on the poll hot path:
// decoding copies at most 8 bytes into a module scratch buffer instead of allocating.
//
// Orders name the value's big-endian bytes A B C D (E F G H for 64 bits) as they appear
// on the wire: ABCD = big endian as sent; BADC = the two bytes of each 16-bit register
// swapped; CDAB = registers in reverse order (low word first); DCBA = all bytes reversed.
// 16-bit types only see the byte swap (CDAB ≡ ABCD, DCBA ≡ BADC).
import type { ResolvedPoint } from './points.js';
import type { DataType, WordOrder } from './schema.js';

export type PointValue = number | boolean | string;
type DecodeSpec = Pick<ResolvedPoint, 'type' | 'order' | 'bit' | 'width' | 'scale' | 'offset'>;
type EncodeSpec = Pick<ResolvedPoint, 'type' | 'order' | 'width' | 'scale' | 'offset'>;

const BYTES: Record<Exclude<DataType, 'string'>, number> = {
  bool: 2,
  bit: 2,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  int64: 8,
  uint64: 8,
  float64: 8,
};

/** Registers a value of this type occupies (strings: `length` registers, 2 characters each). */
export function registerWidth(type: DataType, length = 1): number {
  return type === 'string' ? length : BYTES[type] / 2;
}

/** Wire index of value byte `i` of an `n`-byte value. Each order is its own inverse. */
function wireIndex(order: WordOrder, i: number, n: number): number {
  switch (order) {
    case 'ABCD':
      return i;
    case 'BADC':
      return i ^ 1;
    case 'CDAB':
      return n - 2 - (i & ~1) + (i & 1);
    case 'DCBA':
      return n - 1 - i;
  }
}

const scratch = Buffer.alloc(8);
const TWO32 = 2 ** 32;

/** Copies an `n`-byte value into `scratch` in big-endian order. */
function gather(regs: Buffer, off: number, n: number, order: WordOrder): Buffer {
  for (let i = 0; i < n; i++) scratch[i] = regs[off + wireIndex(order, i, n)]!;
  return scratch;
}

/** Packed coil/discrete response bytes: LSB of the first byte is the first bit. */
export function decodeBit(bits: Buffer, index: number): boolean {
  const byte = bits[index >> 3];
  if (byte === undefined || index < 0) throw new RangeError(`bit ${index} is outside a ${bits.length}-byte response`);
  return ((byte >> (index & 7)) & 1) === 1;
}

/** Decodes one point from raw register bytes (big-endian registers, as on the wire). */
export function decodePoint(p: DecodeSpec, regs: Buffer, byteOffset: number): PointValue {
  const n = p.type === 'string' ? p.width * 2 : BYTES[p.type];
  if (byteOffset < 0 || byteOffset + n > regs.length) {
    throw new RangeError(`${p.type} at byte ${byteOffset} runs past the ${regs.length}-byte response`);
  }
  if (p.type === 'string') return decodeString(regs, byteOffset, n, p.order === 'BADC' || p.order === 'DCBA');
  const b = gather(regs, byteOffset, n, p.order);
  let raw: number;
  switch (p.type) {
    // bool never comes from the planner for registers; nonzero reads as true, leniently.
    case 'bool':
      return b.readUInt16BE(0) !== 0;
    case 'bit':
      return ((b.readUInt16BE(0) >> (p.bit ?? 0)) & 1) === 1;
    case 'int16':
      raw = b.readInt16BE(0);
      break;
    case 'uint16':
      raw = b.readUInt16BE(0);
      break;
    case 'int32':
      raw = b.readInt32BE(0);
      break;
    case 'uint32':
      raw = b.readUInt32BE(0);
      break;
    // hi·2^32 + lo is exact before the one final rounding, like Number(bigint), without a BigInt.
    case 'int64':
      raw = b.readInt32BE(0) * TWO32 + b.readUInt32BE(4);
      break;
    case 'uint64':
      raw = b.readUInt32BE(0) * TWO32 + b.readUInt32BE(4);
      break;
    case 'float32':
      raw = b.readFloatBE(0);
      break;
    case 'float64':
      raw = b.readDoubleBE(0);
      break;
  }
  return p.scale === 1 && p.offset === 0 ? raw : raw * p.scale + p.offset;
}

function decodeString(regs: Buffer, off: number, n: number, swap: boolean): string {
  const src = swap ? Buffer.allocUnsafe(n) : regs;
  let start = off;
  if (swap) {
    for (let i = 0; i < n; i++) src[i] = regs[off + (i ^ 1)]!;
    start = 0;
  }
  let end = start + n;
  while (end > start && (src[end - 1] === 0 || src[end - 1] === 0x20)) end--;
  return src.toString('latin1', start, end);
}

interface IntRange {
  min: number;
  /** Exclusive upper bound: 2^63 and 2^64 are exact doubles, 2^63-1 and 2^64-1 are not. */
  below: number;
  text: string;
}
const INT_RANGES: Partial<Record<DataType, IntRange>> = {
  int16: { min: -32768, below: 32768, text: '-32768..32767' },
  uint16: { min: 0, below: 65536, text: '0..65535' },
  int32: { min: -(2 ** 31), below: 2 ** 31, text: '-2147483648..2147483647' },
  uint32: { min: 0, below: 2 ** 32, text: '0..4294967295' },
  int64: { min: -(2 ** 63), below: 2 ** 63, text: '-9223372036854775808..9223372036854775807' },
  uint64: { min: 0, below: 2 ** 64, text: '0..18446744073709551615' },
};
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Encodes a value for a write: the register bytes in wire order (2·width bytes), or for
 * `bool` (coils) a 1-byte buffer 0/1 — the caller writes coils with FC5/FC15, not this.
 * Numeric values are unscaled first: raw = (value - offset) / scale, rounded for integers.
 * Throws TypeError for a value of the wrong JS type, RangeError when it does not fit.
 */
export function encodePoint(p: EncodeSpec, value: PointValue): Buffer {
  if (p.type === 'bool') {
    if (typeof value !== 'boolean') throw new TypeError(`bool needs true or false, got ${typeof value}`);
    return Buffer.from([value ? 1 : 0]);
  }
  if (p.type === 'bit') throw new TypeError('a bit point cannot be written (map the whole register as uint16)');
  if (p.type === 'string') {
    if (typeof value !== 'string') throw new TypeError(`string needs a string, got ${typeof value}`);
    return encodeString(value, p.width, p.order === 'BADC' || p.order === 'DCBA');
  }
  if (typeof value !== 'number') throw new TypeError(`${p.type} needs a number, got ${typeof value}`);
  const unscaled = p.scale === 1 && p.offset === 0;
  let raw = unscaled ? value : (value - p.offset) / p.scale;
  const shown = unscaled ? `${value}` : `${value} (raw ${raw})`;
  if (!Number.isFinite(raw)) throw new RangeError(`${shown} is not a finite number for ${p.type}`);
  const range = INT_RANGES[p.type];
  if (range) {
    raw = Math.round(raw);
    if (raw < range.min || raw >= range.below) throw new RangeError(`${shown} does not fit ${p.type} (${range.text})`);
  } else if (p.type === 'float32' && Math.abs(raw) > FLOAT32_MAX) {
    throw new RangeError(`${shown} does not fit float32 (±${FLOAT32_MAX})`);
  }
  const n = BYTES[p.type];
  const b = Buffer.alloc(8);
  switch (p.type) {
    case 'int16':
      b.writeInt16BE(raw);
      break;
    case 'uint16':
      b.writeUInt16BE(raw);
      break;
    case 'int32':
      b.writeInt32BE(raw);
      break;
    case 'uint32':
      b.writeUInt32BE(raw);
      break;
    case 'int64':
      b.writeBigInt64BE(BigInt(raw));
      break;
    case 'uint64':
      b.writeBigUInt64BE(BigInt(raw));
      break;
    case 'float32':
      b.writeFloatBE(raw);
      break;
    case 'float64':
      b.writeDoubleBE(raw);
      break;
  }
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[wireIndex(p.order, i, n)] = b[i]!;
  return out;
}

function encodeString(value: string, width: number, swap: boolean): Buffer {
  const n = width * 2;
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0xff) throw new RangeError(`"${value}" has a character outside latin1 at ${i}`);
  }
  if (value.length > n) throw new RangeError(`"${value}" is ${value.length} characters, does not fit ${width} registers (${n})`);
  const out = Buffer.alloc(n); // NUL padding
  out.write(value, 'latin1');
  if (swap) out.swap16();
  return out;
}
