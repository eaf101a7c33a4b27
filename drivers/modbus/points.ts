// Turns a device's configured point map into resolved points (wire addresses, register
// counts, poll intervals) and reports the mistakes JSON Schema cannot see: a type that
// does not fit its table, a missing string length or bit index, a Modicon address in
// the wrong range, duplicate names, unknown lines or poll groups.
import type { DataType, ModbusDeviceConfig, ModbusPointConfig, Table, WordOrder } from './schema.js';

export interface ResolvedPoint {
  name: string;
  table: Table;
  /** 0-based address on the wire. */
  address: number;
  /** Registers (holding/input) or coils/inputs (coil/discrete) the point occupies. */
  width: number;
  type: DataType;
  order: WordOrder;
  bit?: number;
  scale: number;
  offset: number;
  unit?: string;
  pollMs: number;
  report: ModbusPointConfig['report'];
  deadband: number;
  writable: boolean;
}

export interface PointProblem {
  /** Path below the device's `modbus` section, e.g. ['points', 3, 'type']. */
  path: (string | number)[];
  message: string;
}

const REGISTER_WIDTH: Record<Exclude<DataType, 'string'>, number> = {
  bool: 1,
  bit: 1,
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  int64: 4,
  uint64: 4,
  float64: 4,
};

const MODICON_BASE: Record<Table, number> = { coil: 0, discrete: 10000, input: 30000, holding: 40000 };

/** Converts a configured address to the 0-based wire address, or explains why it cannot. */
function wireAddress(address: number, table: Table, addressing: ModbusDeviceConfig['addressing']): number | string {
  if (addressing === 'zero-based') return address <= 65535 ? address : 'must be 0-65535';
  if (addressing === 'one-based') return address >= 1 && address <= 65536 ? address - 1 : 'one-based addresses run 1-65536';
  // Modicon: 40001 (5 digits, up to 9999 registers) or 400001 (6 digits, up to 65536).
  const base5 = MODICON_BASE[table];
  const base6 = base5 * 10;
  if (address > base6 && address <= base6 + 65536) return address - base6 - 1;
  if (address > base5 && address <= base5 + 9999) return address - base5 - 1;
  const first = table === 'coil' ? '00001' : `${base5 + 1}`;
  return `a Modicon ${table} address starts at ${first} (or ${table === 'coil' ? '000001' : base6 + 1})`;
}

export function resolvePoints(dev: ModbusDeviceConfig): { points: ResolvedPoint[]; problems: PointProblem[] } {
  const points: ResolvedPoint[] = [];
  const problems: PointProblem[] = [];
  const names = new Map<string, number>();
  dev.points.forEach((p, i) => {
    const fail = (key: string | null, message: string) => problems.push({ path: key ? ['points', i, key] : ['points', i], message });
    const prev = names.get(p.name);
    if (prev !== undefined) fail('name', `point "${p.name}" is already defined at points[${prev}]`);
    names.set(p.name, i);
    const bitTable = p.table === 'coil' || p.table === 'discrete';
    if (bitTable && p.type !== 'bool') fail('type', `${p.table} points hold single bits: type must be bool`);
    if (!bitTable && p.type === 'bool') fail('type', `a ${p.table} register is 16 bits: use bit (with bit: N) or uint16`);
    if (p.type === 'string' && p.length === undefined) fail('length', 'string points need length (registers, 2 characters each)');
    if (p.type !== 'string' && p.length !== undefined) fail('length', 'length applies to string points only');
    if (p.type === 'bit' && p.bit === undefined) fail('bit', 'bit points need bit: 0-15');
    if (p.type !== 'bit' && p.bit !== undefined) fail('bit', 'bit applies to type: bit only');
    if (p.writable && (p.table === 'input' || p.table === 'discrete')) fail('writable', `${p.table} is read-only in Modbus`);
    if (p.writable && p.type === 'bit') fail('writable', 'writing one bit of a register is not supported; map the whole register');
    if (p.report === 'deadband' && p.deadband <= 0) fail('deadband', 'report: deadband needs deadband > 0');
    let pollMs = p.pollMs ?? dev.pollMs;
    if (p.group !== undefined) {
      const g = dev.pollGroups[p.group];
      if (g === undefined)
        fail('group', `unknown poll group "${p.group}" (pollGroups has: ${Object.keys(dev.pollGroups).join(', ') || 'none'})`);
      else if (p.pollMs === undefined) pollMs = g;
    }
    const address = wireAddress(p.address, p.table, dev.addressing);
    if (typeof address === 'string') return fail('address', address);
    const width = p.type === 'string' ? (p.length ?? 1) : REGISTER_WIDTH[p.type];
    if (address + width > 65536) return fail('address', 'the point runs past address 65535');
    points.push({
      name: p.name,
      table: p.table,
      address,
      width,
      type: p.type,
      order: p.order,
      ...(p.type === 'bit' && p.bit !== undefined ? { bit: p.bit } : {}),
      scale: p.scale,
      offset: p.offset,
      ...(p.unit !== undefined ? { unit: p.unit } : {}),
      pollMs,
      report: p.report,
      deadband: p.deadband,
      writable: p.writable,
    });
  });
  return { points, problems };
}
