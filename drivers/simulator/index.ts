// Built-in simulator: a few fake environment sensors emitting sine-wave readings, so a
// fresh install shows data flowing with no hardware attached. It goes through the same
// ingest path as real drivers (store, metrics, bus).
import type { SimulatorDriverConfig, SiteConfig } from '../../config/schema.js';
import type { Driver, DriverContext, DriverHealth } from '../../gateway/driver.js';
import type { Reading } from '../../gateway/types.js';

const DRIVER = 'simulator';

export class SimulatorDriver implements Driver {
  readonly name = DRIVER;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private dropped = 0;

  constructor(private readonly cfg: SimulatorDriverConfig) {}

  async start(ctx: DriverContext): Promise<void> {
    const devices = Array.from({ length: this.cfg.devices }, (_, i) => `sim-${i + 1}`);
    const tick = () => {
      const now = Date.now();
      const readings: Reading[] = [];
      devices.forEach((device, i) => {
        const phase = now / 60_000 + i;
        readings.push({ ts: now, device, point: 'temperature', value: round(21 + 3 * Math.sin(phase)), unit: 'Cel' });
        readings.push({ ts: now, device, point: 'humidity', value: round(45 + 10 * Math.cos(phase)), unit: '%RH' });
        ctx.devices.seen(device, now, DRIVER, this.cfg.zone);
      });
      this.ticks++;
      ctx.metrics.readingsReceived.inc({ driver: DRIVER }, readings.length);
      ctx.ingest(readings).catch((err: Error) => {
        this.dropped += readings.length;
        ctx.reject(err.name === 'QueueFullError' ? 'queue_full' : 'store_error', readings.length);
      });
    };
    for (const d of devices) ctx.devices.setOnline(d, true, DRIVER, this.cfg.zone);
    this.timer = setInterval(tick, this.cfg.intervalMs);
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  health(): DriverHealth {
    return { ok: this.timer !== null, devices: this.cfg.devices, ticks: this.ticks, dropped: this.dropped };
  }
}

const round = (v: number) => Math.round(v * 100) / 100;

export function createSimulatorDriver(site: SiteConfig): SimulatorDriver | null {
  return site.drivers.simulator.enabled ? new SimulatorDriver(site.drivers.simulator) : null;
}
