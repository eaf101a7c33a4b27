// Modbus driver: polls the devices configured with a `modbus` section over their lines
// (TCP, RTU, RTU over TCP) and writes coils and holding registers for actuators such
// as relays and lock controllers. Requests are planned once at start (planner.ts),
// every line serialises its own traffic (line.ts), and each device polls on its own
// timers (poller.ts) so one dead device cannot hold up the rest.
import type { SiteView } from '../../gateway/contract/descriptor.js';
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { ModbusMetrics } from './metrics.js';
import type { ModbusDeviceConfig, ModbusDriverConfig } from './schema.js';
import { commandArgs, type Command, type CommandResult } from '../../gateway/contract/types.js';
import { decodeBit, decodePoint, encodePoint } from './codec.js';
import { buildReadPdu, buildWriteCoilPdu, buildWriteRegistersPdu } from './frames.js';
import { ModbusLine, failureKind } from './line.js';
import { planRequests } from './planner.js';
import { DevicePoller } from './poller.js';
import { resolvePoints, type ResolvedPoint } from './points.js';

export interface ModbusHealth extends DriverHealth {
  devices: Record<string, ReturnType<DevicePoller['health']>>;
  lines: Record<string, { queued: number }>;
}

export class ModbusDriver implements Driver<ModbusHealth> {
  readonly name = 'modbus';
  private readonly lines = new Map<string, ModbusLine>();
  private readonly pollers = new Map<string, DevicePoller>();
  constructor(
    private readonly cfg: ModbusDriverConfig,
    private readonly site: SiteView<ModbusDeviceConfig>,
  ) {}

  async start(ctx: DriverContext<ModbusMetrics>): Promise<void> {
    for (const cfg of this.cfg.lines) this.lines.set(cfg.id, new ModbusLine(cfg, ctx.metrics));
    for (const dev of this.site.devices) {
      const line = this.lines.get(dev.config.line);
      if (!line) throw new Error(`device ${dev.id}: unknown Modbus line "${dev.config.line}"`);
      const { points, problems } = resolvePoints(dev.config);
      if (problems.length > 0) throw new Error(`device ${dev.id}: ${problems.map((p) => p.message).join('; ')}`);
      const poller = new DevicePoller(dev.id, dev.zone, dev.config, points, planRequests(points, dev.config), line, ctx);
      this.pollers.set(dev.id, poller);
    }
    for (const p of this.pollers.values()) p.start();
    ctx.log.info({ lines: this.lines.size, devices: this.pollers.size }, 'Modbus polling started');
  }

  async stop(): Promise<void> {
    for (const p of this.pollers.values()) p.stop();
    this.pollers.clear();
    await Promise.all([...this.lines.values()].map((l) => l.close()));
    this.lines.clear();
  }

  health(): ModbusHealth {
    const devices = Object.fromEntries([...this.pollers].map(([id, p]) => [id, p.health()]));
    const lines = Object.fromEntries([...this.lines].map(([id, l]) => [id, { queued: l.queued }]));
    return { ok: true, devices, lines };
  }

  owns(device: string): boolean {
    return this.pollers.has(device);
  }

  /**
   * `action: "write"` with `args: { point, value }` writes one coil or holding-register
   * point (same type/order encoding as reads). Writes go ahead of queued polls; with
   * the device's verifyWrites the point is read back and compared.
   */
  async write(cmd: Command): Promise<CommandResult> {
    const poller = this.pollers.get(cmd.device);
    if (!poller) return { ok: false, detail: `device "${cmd.device}" is not a Modbus device` };
    if (cmd.action !== 'write')
      return { ok: false, detail: `unknown action "${commandArgs(cmd).action}" (Modbus devices take "write" with args {point, value})` };
    const { value } = cmd;
    const point = poller.points.find((p) => p.name === cmd.point);
    if (!point) return { ok: false, detail: `device "${cmd.device}" has no point "${cmd.point}"` };
    if (!point.writable) return { ok: false, detail: `point "${point.name}" is not writable (set writable: true)` };
    let pdu: Buffer;
    try {
      pdu =
        point.table === 'coil'
          ? buildWriteCoilPdu(point.address, toBool(value))
          : buildWriteRegistersPdu(point.address, encodePoint(point, value));
    } catch (err) {
      return { ok: false, detail: `cannot encode ${JSON.stringify(value)} as ${point.type}: ${(err as Error).message}` };
    }
    try {
      await poller.line.request(poller.cfg.unit, pdu, 'write');
      if (!poller.cfg.verifyWrites) return { ok: true, detail: `wrote ${point.name} = ${JSON.stringify(value)}` };
      const readBack = await this.readPoint(poller, point);
      // Compare with what the register can hold (e.g. 220.54 at scale 0.1 is 220.5).
      const expected = point.table === 'coil' ? toBool(value) : decodePoint(point, encodePoint(point, value), 0);
      const same =
        typeof expected === 'number' && typeof readBack === 'number'
          ? Math.abs(expected - readBack) <= 1e-9 * Math.max(1, Math.abs(expected))
          : expected === readBack;
      return same
        ? { ok: true, detail: `wrote ${point.name} = ${JSON.stringify(value)} (verified)` }
        : { ok: false, detail: `wrote ${point.name} but read back ${JSON.stringify(readBack)}` };
    } catch (err) {
      return { ok: false, detail: `write of ${point.name} failed (${failureKind(err)}): ${(err as Error).message}` };
    }
  }

  private async readPoint(poller: DevicePoller, p: ResolvedPoint): Promise<ReturnType<typeof decodePoint>> {
    const data = await poller.line.request(poller.cfg.unit, buildReadPdu(p.table, p.address, p.width), 'write');
    return p.table === 'coil' || p.table === 'discrete' ? decodeBit(data, 0) : decodePoint(p, data, 0);
  }
}

function toBool(v: number | boolean | string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  const s = v.toLowerCase();
  if (['true', 'on', '1'].includes(s)) return true;
  if (['false', 'off', '0'].includes(s)) return false;
  throw new TypeError(`"${v}" is not a boolean (true/false, on/off, 1/0)`);
}
