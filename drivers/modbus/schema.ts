// Config schema of the Modbus driver: lines (a TCP endpoint, a serial port, or a serial
// server reached over TCP) under drivers.modbus, and per device a `modbus` section with
// its unit id, limits and point map. Part of config/schema.ts (one source of truth).
import { Type, type Static } from '@sinclair/typebox';
import { Id, Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';

const TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
export type Table = (typeof TABLES)[number];

const DATA_TYPES = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string', 'bit'] as const;
export type DataType = (typeof DATA_TYPES)[number];

const WORD_ORDERS = ['ABCD', 'BADC', 'CDAB', 'DCBA'] as const;
export type WordOrder = (typeof WORD_ORDERS)[number];

const Ms = (dflt: number, description: string) => Type.Integer({ minimum: 10, default: dflt, description });

const LineCommon = {
  id: Id('Line id, referenced by devices[].modbus.line'),
  timeoutMs: Ms(1000, 'Per-request response timeout'),
  retries: Type.Integer({ minimum: 0, maximum: 10, default: 1, description: 'Retries after a timeout or a garbled reply' }),
  interFrameDelayMs: Type.Number({
    minimum: 0,
    default: 0,
    description: 'Extra silence between requests (RTU always keeps at least 3.5 character times)',
  }),
};

const LineVariants = Type.Union([
  Strict({
    ...LineCommon,
    transport: Type.Literal('tcp'),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502 }),
  }),
  Strict({
    ...LineCommon,
    transport: Type.Literal('rtu-over-tcp', { description: 'RTU frames through a serial server (TCP)' }),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    baudRate: Type.Integer({ minimum: 300, default: 9600, description: 'Baud rate of the serial side, for RTU timing' }),
  }),
  Strict({
    ...LineCommon,
    transport: Type.Literal('rtu'),
    path: Type.String({ minLength: 1, description: 'Serial device, e.g. /dev/ttyUSB0' }),
    baudRate: Type.Integer({ minimum: 300, default: 9600 }),
    parity: StringEnum(['none', 'even', 'odd'] as const, { default: 'even' }),
    dataBits: Type.Integer({ minimum: 7, maximum: 8, default: 8 }),
    stopBits: Type.Integer({ minimum: 1, maximum: 2, default: 1 }),
  }),
]);
export type ModbusLineConfig = Static<typeof LineVariants>;

// A discriminated oneOf, so a mistake in one line is reported against its own transport's
// keys only (plain anyOf would report every variant's complaints).
const ModbusLineSchema = Type.Unsafe<ModbusLineConfig>({
  type: 'object',
  required: ['transport'],
  discriminator: { propertyName: 'transport' },
  oneOf: LineVariants.anyOf,
});

const ModbusPointSchema = Strict({
  name: Type.String({ minLength: 1, maxLength: 128, description: 'Point name in readings' }),
  table: StringEnum(TABLES),
  address: Type.Integer({ minimum: 0, maximum: 465536, description: 'Register/coil address (see addressing)' }),
  type: StringEnum(DATA_TYPES, { default: 'uint16' }),
  order: StringEnum(WORD_ORDERS, { default: 'ABCD', description: 'Byte/word order of multi-register values' }),
  length: Type.Optional(Type.Integer({ minimum: 1, maximum: 125, description: 'string: number of registers (2 chars each)' })),
  bit: Type.Optional(Type.Integer({ minimum: 0, maximum: 15, description: 'bit: which bit of the register (0 = LSB)' })),
  scale: Type.Number({ default: 1 }),
  offset: Type.Number({ default: 0, description: 'value = raw * scale + offset' }),
  unit: Type.Optional(Type.String()),
  pollMs: Type.Optional(Type.Integer({ minimum: 10, description: 'Overrides the group / device poll interval' })),
  group: Type.Optional(Type.String({ description: 'A key of the device pollGroups' })),
  report: StringEnum(['always', 'change', 'deadband'] as const, { default: 'always' }),
  deadband: Type.Number({ minimum: 0, default: 0, description: 'report: deadband — minimum change to report' }),
  writable: Type.Boolean({ default: false, description: 'Allow writes (coils and holding registers only)' }),
});
export type ModbusPointConfig = Static<typeof ModbusPointSchema>;

export const ModbusDeviceSchema = Strict({
  line: Type.String({ description: 'drivers.modbus.lines[].id' }),
  unit: Type.Integer({
    minimum: 1,
    maximum: 255,
    default: 1,
    description: 'Modbus unit (slave) id (0 is broadcast and never answers a poll)',
  }),
  addressing: StringEnum(['zero-based', 'one-based', 'modicon'] as const, {
    default: 'zero-based',
    description: 'zero-based: as on the wire; one-based: address-1; modicon: 4xxxx/3xxxx/1xxxx/0xxxx notation',
  }),
  pollMs: Ms(1000, 'Default poll interval of this device'),
  pollGroups: Type.Record(Type.String(), Type.Integer({ minimum: 10 }), { default: {}, description: 'name → poll interval in ms' }),
  maxRegistersPerRequest: Type.Integer({ minimum: 1, maximum: 125, default: 125 }),
  maxCoilsPerRequest: Type.Integer({ minimum: 1, maximum: 2000, default: 2000 }),
  maxGap: Type.Integer({
    minimum: 0,
    maximum: 124,
    default: 10,
    description: 'Unused registers/coils a request may span to join two points',
  }),
  offlineAfterFailures: Type.Integer({ minimum: 1, default: 3 }),
  offlinePollMs: Ms(30000, 'Poll interval while the device does not answer'),
  verifyWrites: Type.Boolean({ default: false, description: 'Read back after each write' }),
  points: Type.Array(ModbusPointSchema, { minItems: 1 }),
});
export type ModbusDeviceConfig = Static<typeof ModbusDeviceSchema>;

export const ModbusDriverSchema = Strict(
  {
    enabled: Type.Boolean({ default: false }),
    lines: Type.Array(ModbusLineSchema, { default: [] }),
  },
  { default: {}, description: 'Modbus RTU/TCP polling' },
);
export type ModbusDriverConfig = Static<typeof ModbusDriverSchema>;
