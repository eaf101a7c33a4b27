// Request planning: turns a device's resolved points into the read requests one poll
// cycle sends. Points on the same table and poll interval are coalesced into one request
// when the unused span between them is small (maxGap), because on a serial line each
// request costs a round trip plus framing silence, while a few extra registers cost little.
import type { ModbusDeviceConfig, Table } from './schema.js';
import type { ResolvedPoint } from './points.js';

export interface PlannedRequest {
  table: Table;
  /** 0-based wire address of the first register/coil read. */
  start: number;
  /** Registers (holding/input) or coils/inputs (coil/discrete) read. */
  count: number;
  pollMs: number;
  /** Sorted by address. */
  points: ResolvedPoint[];
}

export interface PlanLimits {
  maxRegistersPerRequest: number;
  maxCoilsPerRequest: number;
  maxGap: number;
}

export type Addressing = ModbusDeviceConfig['addressing'];

/** Read function code per table. */
export const FUNCTION_CODE: Record<Table, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };
const TABLE_ORDER: Record<Table, number> = { coil: 0, discrete: 1, holding: 2, input: 3 };
const UNIT_NAME: Record<Table, [string, string]> = {
  coil: ['coil', 'coils'],
  discrete: ['input', 'inputs'],
  holding: ['register', 'registers'],
  input: ['register', 'registers'],
};

const isBitTable = (table: Table) => table === 'coil' || table === 'discrete';

function byAddress(a: ResolvedPoint, b: ResolvedPoint): number {
  // Bits of one register come out in bit order; otherwise config order (sort is stable).
  return a.address - b.address || (a.bit ?? -1) - (b.bit ?? -1);
}

function byRequestOrder(a: PlannedRequest, b: PlannedRequest): number {
  return a.pollMs - b.pollMs || TABLE_ORDER[a.table] - TABLE_ORDER[b.table] || a.start - b.start;
}

export function planRequests(points: readonly ResolvedPoint[], limits: PlanLimits): PlannedRequest[] {
  const groups = new Map<string, ResolvedPoint[]>();
  for (const p of points) {
    const max = isBitTable(p.table) ? limits.maxCoilsPerRequest : limits.maxRegistersPerRequest;
    if (p.width > max) {
      const [one, many] = UNIT_NAME[p.table];
      const key = isBitTable(p.table) ? 'maxCoilsPerRequest' : 'maxRegistersPerRequest';
      throw new Error(
        `point "${p.name}" is ${p.width} ${p.width === 1 ? one : many} wide, more than one request may read (${key}: ${max})`,
      );
    }
    const key = `${p.table}/${p.pollMs}`;
    const group = groups.get(key);
    if (group) group.push(p);
    else groups.set(key, [p]);
  }

  const requests: PlannedRequest[] = [];
  for (const group of groups.values()) {
    const { table, pollMs } = group[0];
    const max = isBitTable(table) ? limits.maxCoilsPerRequest : limits.maxRegistersPerRequest;
    let current: PlannedRequest | undefined;
    for (const p of [...group].sort(byAddress)) {
      const end = p.address + p.width;
      if (current) {
        const currentEnd = current.start + current.count;
        // A negative gap is an overlap (two bits of one register): it always qualifies.
        const gap = p.address - currentEnd;
        const span = Math.max(currentEnd, end) - current.start;
        if (gap <= limits.maxGap && span <= max) {
          current.count = span;
          current.points.push(p);
          continue;
        }
      }
      current = { table, start: p.address, count: p.width, pollMs, points: [p] };
      requests.push(current);
    }
  }
  return requests.sort(byRequestOrder);
}

/** The baseline: one request per point, as a driver without coalescing would poll. */
export function planWithoutCoalescing(points: readonly ResolvedPoint[]): PlannedRequest[] {
  return points.map((p) => ({ table: p.table, start: p.address, count: p.width, pollMs: p.pollMs, points: [p] })).sort(byRequestOrder);
}

/** Registers/coils a request reads that no point uses. */
export function unusedCount(req: PlannedRequest): number {
  let covered = 0;
  let coveredEnd = req.start;
  for (const p of req.points) {
    const end = p.address + p.width;
    covered += Math.max(0, end - Math.max(p.address, coveredEnd));
    coveredEnd = Math.max(coveredEnd, end);
  }
  return req.count - covered;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The configured (1-based or Modicon) form of a wire address, as the device's manual lists it. */
function configuredAddress(wire: number, table: Table, addressing: Addressing, sixDigits: boolean): string {
  if (addressing === 'one-based') return String(wire + 1);
  const prefix = { coil: '0', discrete: '1', input: '3', holding: '4' }[table];
  return prefix + String(wire + 1).padStart(sixDigits ? 5 : 4, '0');
}

function range(req: PlannedRequest, addressing: Addressing): string {
  const last = req.start + req.count - 1;
  const wire = req.count === 1 ? `${req.start}` : `${req.start}-${last}`;
  if (addressing === 'zero-based') return wire;
  // Modicon's 5-digit form only reaches 9999; use 6 digits for the whole range past it.
  const six = last + 1 > 9999;
  const first = configuredAddress(req.start, req.table, addressing, six);
  return req.count === 1 ? `${wire} [${first}]` : `${wire} [${first}-${configuredAddress(last, req.table, addressing, six)}]`;
}

/**
 * One header line for the device, then one aligned line per request:
 *   meter-1 (unit 1 on plant-tcp): 2 requests for 4 points
 *     every 1000 ms  FC3 holding  0-9    (10 registers, 2 unused)  voltage_l1, voltage_l2, current_l1
 *     every 5000 ms  FC4 input    0-1    (2 registers)             energy
 */
export function formatPlan(
  device: string,
  unit: number,
  line: string,
  requests: PlannedRequest[],
  addressing: Addressing = 'zero-based',
): string {
  const pointCount = requests.reduce((n, r) => n + r.points.length, 0);
  const legend = addressing === 'zero-based' ? '' : ` (wire addresses; ${addressing} in [ ])`;
  const header = `${device} (unit ${unit} on ${line}): ${plural(requests.length, 'request', 'requests')} for ${plural(pointCount, 'point', 'points')}${legend}`;
  const msWidth = Math.max(0, ...requests.map((r) => String(r.pollMs).length));
  const rows = requests.map((r) => {
    const [one, many] = UNIT_NAME[r.table];
    const unused = unusedCount(r);
    return [
      `every ${String(r.pollMs).padStart(msWidth)} ms`,
      `FC${FUNCTION_CODE[r.table]} ${r.table}`,
      range(r, addressing),
      `(${plural(r.count, one, many)}${unused > 0 ? `, ${unused} unused` : ''})`,
      r.points.map((p) => p.name).join(', '),
    ];
  });
  // Pad every column but the last (names) to its widest cell; intervals align right.
  const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...rows.map((row) => row[i].length)));
  const lines = rows.map((row) => row.map((cell, i) => (i < 4 ? cell.padEnd(widths[i]) : cell)).join('  '));
  return [header, ...lines.map((l) => `  ${l}`)].join('\n');
}
