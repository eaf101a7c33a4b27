// The Modbus driver's descriptor: polling and writes over TCP, RTU and RTU over TCP
// (driver.ts), the config checks the schema cannot make, and `outpost modbus plan`.
import type { CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import type { DriverDescriptor, PointInfo } from '../../gateway/contract/descriptor.js';
import type { ModbusDriver } from './driver.js';
import { modbusMetrics, type ModbusMetrics } from './metrics.js';
import { planRequests } from './planner.js';
import { resolvePoints } from './points.js';
import { ModbusDeviceSchema, ModbusDriverSchema } from './schema.js';

export const modbus: DriverDescriptor<'modbus', typeof ModbusDriverSchema, typeof ModbusDeviceSchema, ModbusDriver, ModbusMetrics> = {
  name: 'modbus',
  config: ModbusDriverSchema,
  device: ModbusDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: modbusMetrics,
  async create(section, site): Promise<ModbusDriver> {
    const { ModbusDriver } = await import('./driver.js');
    return new ModbusDriver(section, site);
  },
  checks(section, site) {
    const out: CrossCheckProblem[] = [];
    const lineIds = new Map<string, number>();
    section.lines.forEach((l, i) => {
      const prev = lineIds.get(l.id);
      if (prev !== undefined)
        out.push({ path: ['drivers', 'modbus', 'lines', i, 'id'], message: `line id "${l.id}" is already used by lines[${prev}]` });
      else lineIds.set(l.id, i);
    });
    for (const d of site.devices) {
      const at = ['devices', d.index, 'modbus'];
      if (!lineIds.has(d.config.line)) {
        const known = [...lineIds.keys()].join(', ') || 'none defined';
        out.push({ path: [...at, 'line'], message: `unknown Modbus line "${d.config.line}" (drivers.modbus.lines: ${known})` });
      }
      const { points, problems } = resolvePoints(d.config);
      for (const p of problems) out.push({ path: [...at, ...p.path], message: p.message });
      if (problems.length > 0) continue;
      try {
        planRequests(points, d.config); // a point wider than one request can never be read
      } catch (err) {
        out.push({ path: at, message: (err as Error).message });
      }
    }
    return out;
  },
  points(device) {
    const out = new Map<string, PointInfo>();
    for (const p of resolvePoints(device).points) out.set(p.name, { writable: p.writable, boolean: p.table === 'coil' });
    return out;
  },
  cli(program, hooks) {
    program
      .command('modbus')
      .description('Modbus tools')
      .command('plan')
      .description('show the read requests each Modbus device is polled with (points coalesced per maxGap and request limits)')
      .addOption(hooks.configOption())
      .option('--device <id>', 'show only this device')
      .option('--json', 'print JSON')
      .action(async (o: { config?: string; device?: string; json?: boolean }) => {
        const { runModbusPlan } = await import('./plan-cli.js');
        console.log(runModbusPlan(hooks.load(o.config).site, o));
      });
  },
};
