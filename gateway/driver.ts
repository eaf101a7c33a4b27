// The driver contract. A driver talks to devices over one protocol and hands what it
// hears to the gateway through its context; it never touches the store or another
// driver. The supervisor owns its lifecycle.
import type { SiteConfig } from '../config/schema.js';
import type { Bus } from './bus.js';
import type { DeviceRegistry } from './devices.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Command, CommandResult, OutpostEvent, Reading } from './types.js';

export interface DriverContext {
  readonly site: SiteConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly bus: Bus;
  readonly devices: DeviceRegistry;
  /**
   * Hands rows to the store; resolves once they are committed (`until: 'queued'`: once
   * they are queued; a later commit failure is then counted as `store_error`).
   * `waitForSpace` makes a full queue delay the caller — back-pressure for peers that
   * can be slowed down — instead of rejecting at once with QueueFullError.
   */
  ingest(readings: readonly Reading[], opts?: IngestOptions): Promise<void>;
  /** Records an event (stored, published on the bus). Resolves once committed. */
  emitEvent(type: string, data?: unknown, subject?: string): Promise<void>;
  /** Counts a dropped input by reason (`outpost_rejects_total{driver,reason}`). */
  reject(reason: string, count?: number): void;
  /** Tells the supervisor the driver has failed at run time; it will be restarted. */
  fail(err: Error): void;
}

export interface IngestOptions {
  waitForSpace?: boolean;
  until?: 'queued' | 'committed';
}

export interface DriverHealth {
  ok: boolean;
  detail?: string;
  [key: string]: unknown;
}

export interface Driver {
  readonly name: string;
  start(ctx: DriverContext): Promise<void>;
  stop(): Promise<void>;
  write?(cmd: Command): Promise<CommandResult>;
  /** Whether `write` can reach this device (commands are routed by it). */
  owns?(device: string): boolean;
  health(): DriverHealth;
}

export type DriverFactory = (site: SiteConfig) => Driver | null;
