// A driver folder's one export: everything the rest of Outpost needs to know about the
// driver. The site config schema is assembled from these (config/schema.ts), `outpost
// validate` runs their checks, /metrics registers their metrics, the local API mounts
// their routes and the CLI their commands. Adding a driver is a folder plus one line in
// drivers/index.ts. The descriptor module stays light: the driver itself (and its
// native or heavy dependencies) is imported by `create`, only when the driver is enabled.
import type { Static, TSchema } from '@sinclair/typebox';
import type { Command as CliCommand, Option } from 'commander';
import type { FastifyInstance } from 'fastify';
import type { MetricFactory } from '../kernel/metrics.js';
import type { CrossCheckProblem } from '../kernel/yaml-config.js';
import type { Driver, SiteInfo } from './driver.js';
import type {} from './api.js';

/** A configured device that has this driver's section (`devices[index].<driver>`). */
export interface DeviceView<D> {
  /** Position in `devices[]`, for config error paths. */
  index: number;
  id: string;
  zone: string;
  name?: string;
  tags: readonly string[];
  config: D;
}

export interface SiteView<D> extends SiteInfo {
  /** The devices with this driver's section, in config order. */
  devices: readonly DeviceView<D>[];
  /** Every configured device id, whatever its driver. */
  deviceIds: readonly string[];
}

/** What config checks may also look at. */
export interface CheckView<D> extends SiteView<D> {
  /** store.maxQueueRows: no single input may be larger. */
  maxQueueRows: number;
}

/** A point of a device that commands can set (locks and rules check against it). */
export interface PointInfo {
  writable: boolean;
  /** A two-state point (coil, relay): a lock can drive it. */
  boolean: boolean;
}

export interface ApiCliOptions {
  config?: string;
  url?: string;
  token?: string;
}

export interface CliHooks<C, D> {
  /** `-c, --config <file>`, as every command takes it. */
  configOption(): Option;
  /** Loads and validates the site file (default: $OUTPOST_CONFIG or the bundled one). */
  load(path?: string): { section: C; site: SiteView<D> };
  /** The `outpost discover` group, for discovery subcommands. */
  discover: CliCommand;
  /** Adds -c/--config, --url and --token: what a command talking to the running gateway takes. */
  apiOptions(cmd: CliCommand): CliCommand;
  /** Calls the running gateway's local API (its certificate pinned; token from --token, $OUTPOST_TOKEN or admin.token). */
  api<T>(opts: ApiCliOptions, path: string, init?: { method?: string; body?: unknown }): Promise<T>;
}

type DeviceConfig<D> = D extends TSchema ? Static<D> : never;

export interface DriverDescriptor<N extends string, C extends TSchema, D extends TSchema | undefined, I extends Driver, M> {
  readonly name: N;
  /** `drivers.<name>` in the site file. */
  readonly config: C;
  /** `devices[].<name>` in the site file, for drivers with per-device settings. */
  readonly device?: D;
  enabled(section: Static<C>): boolean;
  /** Declares the driver's metrics once per gateway (whether or not it is enabled). */
  metrics(f: MetricFactory): M;
  /** Builds the driver; heavy modules are imported here, not at the top of the descriptor. */
  create(section: Static<C>, site: SiteView<DeviceConfig<D>>): Promise<I>;
  /** What the schema cannot say (references between sections, unique ids, …). */
  checks?(section: Static<C>, site: CheckView<DeviceConfig<D>>): CrossCheckProblem[];
  /** Extra local API routes; `running()` is the driver while it runs. */
  routes?(app: FastifyInstance, running: () => I | undefined): void;
  /** Extra `outpost` subcommands. */
  cli?(program: CliCommand, hooks: CliHooks<Static<C>, DeviceConfig<D>>): void;
  /** Secret files the section names (TLS keys, ...): checked at start like the gateway's own. */
  secretFiles?(section: Static<C>): { path: string; what: string }[];
  /** Secret files a device section names (key files, ...). */
  deviceSecretFiles?(device: DeviceConfig<D>): { path: string; what: string }[];
  /** Keys of a device section that hold a secret in clear (so the site file must be private). */
  inlineSecrets?(device: DeviceConfig<D>): string[];
  /** Points of a device that commands can write. */
  points?(device: DeviceConfig<D>): ReadonlyMap<string, PointInfo>;
  /** Whether its devices take lock/unlock commands themselves (not through a point). */
  readonly takesLockCommands?: boolean;
}

/** Any registered descriptor, as the gateway, the CLI and config checks handle them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds descriptors of different config types
export type AnyDriverDescriptor = DriverDescriptor<string, TSchema, TSchema | undefined, Driver, any>;
