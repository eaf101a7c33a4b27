// The driver contract. A driver talks to devices over one protocol and hands what it
// hears to the gateway through its context; it never touches the store or another
// driver. The supervisor owns its lifecycle. A driver folder exports one descriptor
// (descriptor.ts): its config schemas, how to build it, and what it adds to the rest of
// the gateway (checks, metrics, API routes, CLI commands); drivers/index.ts lists them.
import type { Logger } from '../kernel/log.js';
import type { Command, CommandResult, Reading } from './types.js';

/** What a driver may do to the device registry (online state, last seen). */
export interface DeviceDirectory {
  seen(id: string, ts: number, via: string, zone?: string): void;
  setOnline(id: string, online: boolean, via: string, zone?: string): void;
  state(id: string): { online: boolean; via: string | null } | undefined;
}

export interface IngestOptions {
  /** A full store queue delays the caller (back-pressure) instead of refusing at once. */
  waitForSpace?: boolean;
  /** Resolve once queued rather than once committed; a later commit failure is counted. */
  until?: 'queued' | 'committed';
}

/** The site as a driver sees it. */
export interface SiteInfo {
  /** Site id: the {site} part of topics. */
  id: string;
  dataDir: string;
  timezone: string;
}

export interface DriverContext<M = unknown> {
  readonly site: SiteInfo;
  readonly log: Logger;
  /** The driver's own metrics (its descriptor's `metrics`). */
  readonly metrics: M;
  readonly devices: DeviceDirectory;
  /**
   * Hands acknowledged input to the store (counted as received): resolves once
   * committed — or once queued with `until: 'queued'` — and rejects with QueueFullError
   * or StoreClosedError (gateway/contract/errors.ts) when the store cannot take it, so
   * the peer is not acknowledged.
   */
  ingest(readings: readonly Reading[], opts?: IngestOptions): Promise<void>;
  /**
   * Hands lossy input to the store (counted as received): never rejects; a refusal is
   * counted by reason (queue_full, store_error). Resolves true once queued.
   */
  offer(readings: readonly Reading[], opts?: Omit<IngestOptions, 'until'>): Promise<boolean>;
  /** Records an event (stored, published on the bus). Resolves once committed. */
  emitEvent(type: string, data?: unknown, subject?: string): Promise<void>;
  /** The newest committed numeric value of `point` for each device the store still holds it for. */
  recall(point: string): Promise<ReadonlyMap<string, number>>;
  /** Counts a dropped input by reason (`outpost_rejects_total{driver,reason}`). */
  reject(reason: string, count?: number): void;
  /** A warning logged at most once a minute per `key` (with how many were suppressed since): for input errors a device may repeat. */
  warnLimited(key: string, fields: Record<string, unknown>, msg: string): void;
  /** Counts a refused login or ACL check (`outpost_auth_failures_total{surface=<driver>}`). */
  authFailure(reason: string): void;
  /** Counts input refused or slowed by a limit (`outpost_rate_limited_total{surface=<driver>}`). */
  rateLimited(kind: string): void;
  /** Tells the supervisor the driver has failed at run time; it will be restarted. */
  fail(err: Error): void;
}

export interface DriverHealth {
  ok: boolean;
  detail?: string;
}

export interface Driver<H extends DriverHealth = DriverHealth> {
  readonly name: string;
  start(ctx: DriverContext): Promise<void>;
  stop(): Promise<void>;
  write?(cmd: Command): Promise<CommandResult>;
  /** Whether `write` can reach this device (commands are routed by it). */
  owns?(device: string): boolean;
  health(): H;
}

// ---- capabilities: what other parts may use a running driver for -----------------

/** Publishes on the site's message bus (rules' `publish` action). */
export interface Publisher {
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
}

export const isPublisher = (d: Driver): d is Driver & Publisher => typeof (d as Partial<Publisher>).publish === 'function';

/** Network ports a driver listens on (useful when configured as 0). */
export interface Listening {
  readonly ports: Readonly<Record<string, number | undefined>> | null;
}
