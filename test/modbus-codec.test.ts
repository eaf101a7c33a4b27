// Modbus register codec against golden bytes. Expected bytes come from Buffer's own
// big-endian writers (or literal hex), permuted by the byte-index tables below — never
// from the code under test — and every case runs in both directions.
import t from 'tap';
import { decodeBit, decodePoint, encodePoint, registerWidth } from '../drivers/modbus/codec.js';
import type { DataType, WordOrder } from '../drivers/modbus/schema.js';

const ORDERS: WordOrder[] = ['ABCD', 'BADC', 'CDAB', 'DCBA'];
// PERM[n][order][w]: index of the big-endian value byte found at wire position w.
const PERM: Record<number, Record<WordOrder, number[]>> = {
  2: { ABCD: [0, 1], BADC: [1, 0], CDAB: [0, 1], DCBA: [1, 0] },
  4: { ABCD: [0, 1, 2, 3], BADC: [1, 0, 3, 2], CDAB: [2, 3, 0, 1], DCBA: [3, 2, 1, 0] },
  8: {
    ABCD: [0, 1, 2, 3, 4, 5, 6, 7],
    BADC: [1, 0, 3, 2, 5, 4, 7, 6],
    CDAB: [6, 7, 4, 5, 2, 3, 0, 1],
    DCBA: [7, 6, 5, 4, 3, 2, 1, 0],
  },
};
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const permute = (be: Buffer, order: WordOrder) => Buffer.from(PERM[be.length][order].map((i) => be[i]));
const written = (n: number, write: (b: Buffer) => void) => {
  const b = Buffer.alloc(n);
  write(b);
  return b;
};
const spec = (
  type: DataType,
  order: WordOrder = 'ABCD',
  extra: { width?: number; bit?: number; scale?: number; offset?: number } = {},
) => ({
  type,
  order,
  width: extra.width ?? registerWidth(type),
  scale: extra.scale ?? 1,
  offset: extra.offset ?? 0,
  ...(extra.bit !== undefined ? { bit: extra.bit } : {}),
});

interface Golden {
  type: DataType;
  value: number;
  /** What decoding gives back when it differs from value (float32 rounding). */
  decoded?: number;
  be: Buffer;
  /** The same big-endian bytes written out by hand, to check the writer. */
  hex: string;
}
const GOLDEN: Golden[] = [
  { type: 'int16', value: -12345, be: written(2, (b) => b.writeInt16BE(-12345)), hex: 'CFC7' },
  { type: 'int16', value: 32767, be: written(2, (b) => b.writeInt16BE(32767)), hex: '7FFF' },
  { type: 'uint16', value: 0xbeef, be: written(2, (b) => b.writeUInt16BE(0xbeef)), hex: 'BEEF' },
  { type: 'int32', value: -2, be: written(4, (b) => b.writeInt32BE(-2)), hex: 'FFFFFFFE' },
  { type: 'int32', value: 0x01020304, be: written(4, (b) => b.writeInt32BE(0x01020304)), hex: '01020304' },
  { type: 'uint32', value: 0xa1b2c3d4, be: written(4, (b) => b.writeUInt32BE(0xa1b2c3d4)), hex: 'A1B2C3D4' },
  { type: 'float32', value: 123.456, decoded: Math.fround(123.456), be: written(4, (b) => b.writeFloatBE(123.456)), hex: '42F6E979' },
  { type: 'float32', value: -0.15625, be: written(4, (b) => b.writeFloatBE(-0.15625)), hex: 'BE200000' },
  { type: 'int64', value: 0x11223344556677, be: written(8, (b) => b.writeBigInt64BE(0x11223344556677n)), hex: '0011223344556677' },
  { type: 'int64', value: -0x1f2e3d4c5b6a79, be: written(8, (b) => b.writeBigInt64BE(-0x1f2e3d4c5b6a79n)), hex: 'FFE0D1C2B3A49587' },
  { type: 'int64', value: -2, be: written(8, (b) => b.writeBigInt64BE(-2n)), hex: 'FFFFFFFFFFFFFFFE' },
  { type: 'uint64', value: 0x1f2e3d4c5b6a79, be: written(8, (b) => b.writeBigUInt64BE(0x1f2e3d4c5b6a79n)), hex: '001F2E3D4C5B6A79' },
  { type: 'float64', value: -1234.5678, be: written(8, (b) => b.writeDoubleBE(-1234.5678)), hex: 'C0934A456D5CFAAD' },
];

t.test('golden values: every numeric type in every order, both directions', async (t) => {
  for (const g of GOLDEN) {
    t.same(g.be, hex(g.hex), `${g.type} ${g.value} big-endian bytes`);
    for (const order of ORDERS) {
      const wire = permute(g.be, order);
      const label = `${g.type} ${g.value} ${order} ${wire.toString('hex')}`;
      t.equal(decodePoint(spec(g.type, order), wire, 0), g.decoded ?? g.value, `decode ${label}`);
      t.same(encodePoint(spec(g.type, order), g.value), wire, `encode ${label}`);
      // The same bytes inside a larger response, after other registers.
      const framed = Buffer.concat([hex('EEEE EEEE'), wire, hex('DDDD')]);
      t.equal(decodePoint(spec(g.type, order), framed, 4), g.decoded ?? g.value, `decode at offset ${label}`);
    }
  }
});

t.test('orders spelled out byte by byte', async (t) => {
  const float = { ABCD: '42 F6 E9 79', CDAB: 'E9 79 42 F6', BADC: 'F6 42 79 E9', DCBA: '79 E9 F6 42' };
  const u64 = { ABCD: '0102030405060708', BADC: '0201040306050807', CDAB: '0708050603040102', DCBA: '0807060504030201' };
  const i16 = { ABCD: 'CF C7', CDAB: 'CF C7', BADC: 'C7 CF', DCBA: 'C7 CF' };
  for (const order of ORDERS) {
    t.same(permute(hex(float.ABCD), order), hex(float[order]), `PERM table itself, ${order}`);
    t.equal(decodePoint(spec('float32', order), hex(float[order]), 0), Math.fround(123.456), `float32 ${order}`);
    t.same(encodePoint(spec('float32', order), 123.456), hex(float[order]), `float32 encode ${order}`);
    // Beyond 2^53 the value is the nearest double (precision loss is accepted).
    t.equal(decodePoint(spec('uint64', order), hex(u64[order]), 0), 72623859790382850, `uint64 ${order}`);
    t.equal(decodePoint(spec('int64', order), hex(u64[order]), 0), 72623859790382850, `int64 ${order}`);
    t.equal(decodePoint(spec('int16', order), hex(i16[order]), 0), -12345, `int16 ${order}`);
  }
  t.equal(decodePoint(spec('uint64'), hex('FFFFFFFFFFFFFFFF'), 0), 2 ** 64);
  t.equal(decodePoint(spec('int64'), hex('8000000000000000'), 0), -(2 ** 63));
  t.equal(decodePoint(spec('int64'), hex('FFFFFFFFFFFFFFFF'), 0), -1);
});

t.test('strings', async (t) => {
  const w3 = { width: 3 };
  for (const order of ['ABCD', 'CDAB'] as const) {
    t.equal(decodePoint(spec('string', order, w3), hex('48454C4C4F00'), 0), 'HELLO', `high byte first, ${order}`);
    t.same(encodePoint(spec('string', order, w3), 'HELLO'), hex('48454C4C4F00'), `NUL padded, ${order}`);
  }
  for (const order of ['BADC', 'DCBA'] as const) {
    t.equal(decodePoint(spec('string', order, w3), hex('45484C4C004F'), 0), 'HELLO', `bytes swapped, ${order}`);
    t.same(encodePoint(spec('string', order, w3), 'HELLO'), hex('45484C4C004F'), `swapped and padded, ${order}`);
  }
  t.equal(
    decodePoint(spec('string', 'ABCD', { width: 4 }), Buffer.from(' AB \0 \0\0', 'latin1'), 0),
    ' AB',
    'trailing NULs and spaces trimmed, leading kept',
  );
  t.equal(decodePoint(spec('string', 'ABCD', { width: 2 }), hex('0000 0000'), 0), '', 'all NULs');
  t.equal(decodePoint(spec('string', 'ABCD', { width: 1, scale: 10, offset: 1 }), hex('4869'), 0), 'Hi', 'not scaled');
  t.equal(decodePoint(spec('string', 'ABCD', { width: 1 }), hex('CAFE E921'), 2), '\u00e9!', 'latin1, at an offset');
  t.same(encodePoint(spec('string', 'ABCD', w3), 'HELLO!'), Buffer.from('HELLO!'), 'exact fit');
  t.same(encodePoint(spec('string', 'ABCD', { width: 1 }), 'é'), hex('E900'), 'latin1 encode');
  t.throws(
    () => encodePoint(spec('string', 'ABCD', w3), 'HELLO!!'),
    new RangeError('"HELLO!!" is 7 characters, does not fit 3 registers (6)'),
  );
  t.throws(() => encodePoint(spec('string', 'ABCD', w3), '5€'), new RangeError('"5€" has a character outside latin1 at 1'));
});

t.test('bits', async (t) => {
  const reg = hex('8001');
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 0 }), reg, 0), true, 'bit 0 = LSB');
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 15 }), reg, 0), true, 'bit 15 = MSB');
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 1 }), reg, 0), false);
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 14 }), reg, 0), false);
  // A byte-swapped device: the register's value is 0x0001 when the wire says 01 00.
  t.equal(decodePoint(spec('bit', 'BADC', { bit: 0 }), hex('0100'), 0), true, 'BADC bit 0');
  t.equal(decodePoint(spec('bit', 'BADC', { bit: 8 }), hex('0100'), 0), false, 'BADC bit 8');
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 8 }), hex('0100'), 0), true, 'ABCD bit 8');
  t.equal(decodePoint(spec('bit', 'ABCD', { bit: 3, scale: 10, offset: 5 }), hex('0008'), 0), true, 'not scaled');
  // Packed coils: 0xCD 0x01 = coils 0..9 as 1011 0011 10 (LSB first).
  const coils = hex('CD01');
  t.same(
    Array.from({ length: 10 }, (_, i) => decodeBit(coils, i)),
    [true, false, true, true, false, false, true, true, true, false],
  );
  t.throws(() => decodeBit(coils, 16), RangeError);
});

t.test('scale and offset', async (t) => {
  const volts = spec('uint16', 'ABCD', { scale: 0.1, offset: -10 });
  t.equal(decodePoint(volts, hex('0901'), 0), 220.5, 'raw 2305 × 0.1 − 10');
  t.same(encodePoint(volts, 220.5), hex('0901'), '(220.5 + 10) / 0.1 rounds to 2305');
  t.same(encodePoint(volts, 220.54), hex('0901'), 'integer types round');
  t.equal(decodePoint(spec('int32', 'CDAB', { scale: 2, offset: 1 }), hex('FFFE FFFF'), 0), -3, '-2 × 2 + 1');
  t.equal(decodePoint(spec('float32', 'ABCD', { scale: 2, offset: 1 }), hex('BE200000'), 0), 0.6875);
  t.same(encodePoint(spec('float32', 'ABCD', { scale: 2, offset: 1 }), 0.6875), hex('BE200000'));
  t.throws(
    () => encodePoint(spec('uint16', 'ABCD', { scale: 0.5 }), 40000),
    new RangeError('40000 (raw 80000) does not fit uint16 (0..65535)'),
  );
  t.throws(
    () => encodePoint(spec('float32', 'ABCD', { scale: 0 }), 1),
    new RangeError('1 (raw Infinity) is not a finite number for float32'),
  );
});

t.test('range and type errors', async (t) => {
  const fits = (type: DataType, value: number) => () => encodePoint(spec(type), value);
  t.throws(fits('int16', 300000), new RangeError('300000 does not fit int16 (-32768..32767)'));
  t.throws(fits('int16', -32769), new RangeError('-32769 does not fit int16 (-32768..32767)'));
  t.throws(fits('int16', 32767.5), new RangeError('32767.5 does not fit int16 (-32768..32767)'), 'rounds up past the top');
  t.same(encodePoint(spec('int16'), -32768), hex('8000'));
  t.same(encodePoint(spec('int16'), 32767.4), hex('7FFF'));
  t.same(encodePoint(spec('int16'), 1.5), hex('0002'));
  t.throws(fits('uint16', -1), new RangeError('-1 does not fit uint16 (0..65535)'));
  t.throws(fits('uint16', 65536), new RangeError('65536 does not fit uint16 (0..65535)'));
  t.throws(fits('int32', 2 ** 31), new RangeError('2147483648 does not fit int32 (-2147483648..2147483647)'));
  t.throws(fits('uint32', 2 ** 32), new RangeError('4294967296 does not fit uint32 (0..4294967295)'));
  t.throws(fits('int64', 2 ** 63), new RangeError('9223372036854776000 does not fit int64 (-9223372036854775808..9223372036854775807)'));
  t.throws(fits('uint64', -1), new RangeError('-1 does not fit uint64 (0..18446744073709551615)'));
  t.same(encodePoint(spec('int64'), -(2 ** 63)), hex('8000000000000000'));
  t.throws(fits('float32', 1e39), new RangeError('1e+39 does not fit float32 (±3.4028234663852886e+38)'));
  t.throws(fits('float64', NaN), new RangeError('NaN is not a finite number for float64'));
  t.throws(() => encodePoint(spec('float32'), '1.5'), new TypeError('float32 needs a number, got string'));
  t.throws(() => encodePoint(spec('int16'), true), new TypeError('int16 needs a number, got boolean'));
  t.throws(() => encodePoint(spec('string', 'ABCD', { width: 2 }), 5), new TypeError('string needs a string, got number'));
  t.throws(() => encodePoint(spec('bool'), 1), new TypeError('bool needs true or false, got number'));
  t.throws(() => encodePoint(spec('bit', 'ABCD', { bit: 2 }), 1), TypeError);
  t.same(encodePoint(spec('bool'), true), hex('01'), 'coil on (written with FC5 by the caller)');
  t.same(encodePoint(spec('bool'), false), hex('00'));
  t.throws(() => decodePoint(spec('float32'), hex('0102 0304'), 2), RangeError, 'past the end of the response');
});

t.test('registerWidth', async (t) => {
  t.same(
    (['int16', 'uint16', 'bit', 'int32', 'uint32', 'float32', 'int64', 'uint64', 'float64'] as const).map((ty) => registerWidth(ty)),
    [1, 1, 1, 2, 2, 2, 4, 4, 4],
  );
  t.equal(registerWidth('string', 5), 5);
});
