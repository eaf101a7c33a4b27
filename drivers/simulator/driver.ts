// Built-in simulator: a few fake environment sensors emitting sine-wave readings, so a
// fresh install shows data flowing with no hardware attached. It goes through the same
// ingest path as real drivers (store, metrics, bus).
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { Reading } from '../../gateway/contract/types.js';
import type { SimulatorDriverConfig } from './schema.js';

const DRIVER = 'simulator';

export interface SimulatorHealth extends DriverHealth {
  devices: number;
  ticks: number;
  dropped: number;
}

export class SimulatorDriver implements Driver<SimulatorHealth> {
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
      void ctx.offer(readings).then((queued) => {
        if (!queued) this.dropped += readings.length;
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

  health(): SimulatorHealth {
    return { ok: this.timer !== null, devices: this.cfg.devices, ticks: this.ticks, dropped: this.dropped };
  }
}

const round = (v: number) => Math.round(v * 100) / 100;
