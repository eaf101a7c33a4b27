// Starts the configured drivers and keeps them running: a driver that fails to start or
// reports a failure is stopped and started again after a capped exponential backoff,
// and each crash is logged, counted and recorded as a `driver.crashed` event.
import type { Driver, DriverContext, DriverHealth } from './contract/driver.js';
import type { Logger } from './kernel/log.js';
import type { Metrics } from './metrics.js';
import type { Command, CommandResult } from './contract/types.js';
import { backoffDelay } from './kernel/backoff.js';

export interface SupervisorOptions {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** A driver that ran this long without failing starts again from the initial backoff. */
  stableAfterMs: number;
  stopTimeoutMs: number;
}

const DEFAULTS: SupervisorOptions = { initialBackoffMs: 500, maxBackoffMs: 30_000, stableAfterMs: 60_000, stopTimeoutMs: 5_000 };

type State = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped';

interface Slot {
  driver: Driver;
  state: State;
  restarts: number;
  failures: number;
  startedAt: number;
  lastError: string | null;
  timer: NodeJS.Timeout | null;
}

export interface DriverStatus extends DriverHealth {
  state: State;
  restarts: number;
  lastError: string | null;
}

export class Supervisor {
  private readonly slots: Slot[];
  private readonly opts: SupervisorOptions;
  private stopping = false;

  constructor(
    drivers: readonly Driver[],
    private readonly makeContext: (driver: Driver, fail: (err: Error) => void) => DriverContext,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly onCrash: (driver: string, error: string, restartInMs: number) => void,
    opts: Partial<SupervisorOptions> = {},
  ) {
    this.opts = { ...DEFAULTS, ...opts };
    this.slots = drivers.map((driver) => ({
      driver,
      state: 'stopped',
      restarts: 0,
      failures: 0,
      startedAt: 0,
      lastError: null,
      timer: null,
    }));
  }

  async startAll(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.start(s)));
  }

  get(name: string): Driver | undefined {
    return this.slots.find((s) => s.driver.name === name)?.driver;
  }

  /** A driver by its descriptor, typed as the descriptor builds it. */
  instanceOf<I extends Driver>(d: { name: string; create(...args: never[]): Promise<I> }): I | undefined {
    return this.get(d.name) as I | undefined;
  }

  /** The first running driver with a capability (e.g. isPublisher). */
  find<T extends Driver>(has: (d: Driver) => d is T): T | undefined {
    return this.slots.find((s) => s.state === 'running' && has(s.driver))?.driver as T | undefined;
  }

  private async start(slot: Slot): Promise<void> {
    if (this.stopping) return;
    slot.state = 'starting';
    const fail = (err: Error) => this.failed(slot, err);
    try {
      await slot.driver.start(this.makeContext(slot.driver, fail));
      if (slot.state !== 'starting') return; // failed (or stopped) while starting
      slot.state = 'running';
      slot.startedAt = Date.now();
      this.metrics.driverUp.set({ driver: slot.driver.name }, 1);
      this.log.info({ driver: slot.driver.name }, 'driver started');
    } catch (err) {
      this.failed(slot, err as Error);
    }
  }

  private failed(slot: Slot, err: Error): void {
    if (this.stopping || slot.state === 'backoff' || slot.state === 'stopping' || slot.state === 'stopped') return;
    const name = slot.driver.name;
    if (slot.state === 'running' && Date.now() - slot.startedAt >= this.opts.stableAfterMs) slot.failures = 0;
    const delay = backoffDelay(slot.failures, this.opts.initialBackoffMs, this.opts.maxBackoffMs);
    slot.failures++;
    slot.state = 'backoff';
    slot.lastError = err.message;
    this.metrics.driverUp.set({ driver: name }, 0);
    this.log.error({ driver: name, err, restartInMs: delay }, 'driver failed; restarting after backoff');
    this.onCrash(name, err.message, delay);
    void this.stopQuietly(slot.driver).then(() => {
      if (this.stopping) return;
      slot.timer = setTimeout(() => {
        slot.timer = null;
        slot.restarts++;
        this.metrics.driverRestarts.inc({ driver: name });
        void this.start(slot);
      }, delay);
    });
  }

  private async stopQuietly(driver: Driver): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ driver: driver.name }, 'driver did not stop in time');
        resolve();
      }, this.opts.stopTimeoutMs);
    });
    try {
      await Promise.race([driver.stop(), timeout]);
    } catch (err) {
      this.log.warn({ driver: driver.name, err }, 'driver stop failed');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every driver, last started first. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const slot of [...this.slots].reverse()) {
      if (slot.timer) clearTimeout(slot.timer);
      const wasStopped = slot.state === 'stopped';
      slot.state = 'stopping';
      if (!wasStopped) await this.stopQuietly(slot.driver);
      slot.state = 'stopped';
      this.metrics.driverUp.set({ driver: slot.driver.name }, 0);
    }
  }

  status(): Record<string, DriverStatus> {
    const out: Record<string, DriverStatus> = {};
    for (const s of this.slots) {
      let health: DriverHealth = { ok: false };
      if (s.state === 'running') {
        try {
          health = s.driver.health();
        } catch (err) {
          health = { ok: false, detail: `health() threw: ${(err as Error).message}` };
        }
      }
      out[s.driver.name] = { ...health, state: s.state, restarts: s.restarts, lastError: s.lastError };
    }
    return out;
  }

  allRunning(): boolean {
    return this.slots.every((s) => s.state === 'running');
  }

  /** Sends a command to the first running driver that owns the device. */
  async write(cmd: Command): Promise<CommandResult> {
    for (const s of this.slots) {
      const d = s.driver;
      if (s.state === 'running' && d.write && (d.owns?.(cmd.device) ?? false)) return d.write(cmd);
    }
    return { ok: false, detail: `no running driver can reach device "${cmd.device}"` };
  }
}
