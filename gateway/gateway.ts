// The gateway: composes the store, the local API, the drivers, the locks, the rules, the
// uploader and retention as an ordered list of services, started in order and stopped in
// reverse — input stops first, then what was accepted is committed, then the store
// closes. Reading the data path top to bottom starts here (see docs/ARCHITECTURE.md).
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { SiteConfig } from '../config/schema.js';
import { Uploader } from '../sync/uploader.js';
import { AlertStore } from './alerts.js';
import { startApi, type Api } from './api/server.js';
import { apiTlsSummary, tlsFiles } from './api/tls.js';
import { loadTokens, type TokenStore } from './api/tokens.js';
import { createBus, type Bus } from './bus.js';
import { STAGED_CONFIG_FILE, cloudCommandTarget } from './cloud-commands.js';
import type { Driver } from './contract/driver.js';
import type { OutpostEvent } from './contract/types.js';
import { DeviceRegistry } from './devices.js';
import { driverContexts } from './driver-context.js';
import { createDrivers, driverSecrets, registerDriverRoutes } from './drivers.js';
import { createLogger, type Logger } from './kernel/log.js';
import { VERSION } from './kernel/package.js';
import { assertSecretFiles, type SecretFile } from './kernel/secret-files.js';
import { ADMIN_TOKEN_FILE } from './kernel/secrets.js';
import { LockController } from './locks.js';
import { Metrics } from './metrics.js';
import { ActionExecutor } from './rules/actions.js';
import { RulesHost } from './rules/host.js';
import { ruleTargets } from './rules/targets.js';
import { openDatabase, type Database } from './store/db.js';
import { lastSeenByDevice, latestValues } from './store/queries.js';
import { RetentionService } from './store/retention-service.js';
import { StoreWriter } from './store/writer.js';
import { Supervisor } from './supervisor.js';
import { WebhookService } from './webhooks/service.js';

export interface GatewayOptions {
  config: SiteConfig;
  log?: Logger;
  /** Drivers to run instead of the registry's enabled ones (tests). */
  drivers?: readonly (() => Driver | null)[];
  /** The site file, when there is one: checked like other secret files if it holds secrets inline. */
  configFile?: string;
}

export type Phase = 'starting' | 'ready' | 'stopping' | 'stopped';

/** One part of the gateway with a lifecycle. */
interface Service {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class Gateway {
  phase: Phase = 'starting';
  readonly startedAt = Date.now();
  readonly metrics = new Metrics();
  readonly bus: Bus = createBus();
  readonly devices: DeviceRegistry;
  readonly log: Logger;
  db!: Database;
  writer!: StoreWriter;
  supervisor!: Supervisor;
  api!: Api;
  tokens!: TokenStore;
  locks!: LockController;
  rules!: RulesHost;
  sync: Uploader | null = null;
  webhooks!: WebhookService;
  alerts!: AlertStore;
  private readonly started: Service[] = [];

  private constructor(
    readonly config: SiteConfig,
    log: Logger | undefined,
  ) {
    this.log = log ?? createLogger(config.log.level);
    this.devices = new DeviceRegistry(config.devices);
  }

  get dataDir(): string {
    return resolve(this.config.dataDir);
  }

  get dbPath(): string {
    return resolve(this.dataDir, this.config.store.file);
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts.config, opts.log);
    try {
      for (const warning of assertSecretFiles(gw.secretFiles(opts.configFile))) gw.log.warn(warning);
      // A service is stopped even if its start failed halfway: each stop copes with that.
      for (const s of gw.services(opts)) {
        gw.started.push(s);
        await s.start();
      }
    } catch (err) {
      await gw.stop('start failed').catch(() => undefined);
      throw err;
    }
    gw.phase = 'ready';
    const { config } = gw;
    gw.log.info(
      { site: config.site, http: gw.api.port, db: gw.dbPath, drivers: Object.keys(gw.supervisor.status()), seq: gw.writer.nextSeq },
      'gateway ready',
    );
    return gw;
  }

  /** Secret files this config uses; checked at start (gateway/kernel/secret-files.ts). */
  secretFiles(configFile?: string): SecretFile[] {
    const { config, dataDir } = this;
    const drivers = driverSecrets(config);
    return [
      { path: join(dataDir, ADMIN_TOKEN_FILE), what: 'the generated admin API token' },
      { path: resolve(dataDir, config.sync.credentialsFile), what: 'the cloud credentials' },
      { path: tlsFiles(config.http, dataDir).keyFile, what: 'the local API TLS key' },
      ...drivers.files,
      ...config.webhooks.endpoints.flatMap((e) =>
        e.secretFile !== undefined
          ? [{ path: resolve(dataDir, e.secretFile), what: `the signing secret of webhook endpoint ${e.id}` }]
          : [],
      ),
      { path: join(dataDir, STAGED_CONFIG_FILE), what: 'a site config staged by the cloud' },
      ...(configFile && drivers.inline.length > 0
        ? [{ path: configFile, what: `the site config, which holds secrets inline (${drivers.inline.join(', ')})` }]
        : []),
    ];
  }

  /** The parts, in start order; each is stopped in the reverse order. */
  private services(opts: GatewayOptions): Service[] {
    const { config, log } = this;
    const emit = (component: string) => (type: string, data?: unknown, subject?: string) => this.emitEvent(type, component, data, subject);
    return [
      {
        name: 'store',
        start: async () => {
          this.db = await openDatabase(this.dbPath, {
            memoryLimitMB: config.store.memoryLimitMB,
            allowedDirs: [join(this.dataDir, 'tmp')],
          });
          this.writer = await StoreWriter.open(this.db.writer, config.store, this.metrics, this.bus, log);
          this.alerts = new AlertStore(this.db.instance, emit('alerts'));
          for (const [device, ts] of await lastSeenByDevice(this.db.instance)) this.devices.seen(device, ts, 'store');
          this.tokens = loadTokens(config.http.tokens, this.dataDir, log);
          this.locks = new LockController(config.locks, () => this.supervisor, emit('access'), log);
        },
        stop: async () => {
          if (this.writer) {
            const queued = this.writer.queuedRows;
            await this.writer.close();
            log.info({ committedOnStop: queued }, 'store flushed');
          }
          this.db?.close();
        },
      },
      // Right after the store: events committed while everything else stops still get their rows.
      {
        name: 'webhooks',
        start: async () => {
          this.webhooks = new WebhookService({
            instance: this.db.instance,
            config: config.webhooks,
            dataDir: this.dataDir,
            metrics: this.metrics,
            log: log.child({ component: 'webhooks' }),
            onCommittedEvents: (fn) => this.bus.on('committed', (_readings, events) => fn(events)),
          });
          await this.webhooks.start();
        },
        stop: () => this.webhooks?.stop() ?? Promise.resolve(),
      },
      {
        name: 'api',
        start: async () => {
          this.api = await startApi(this.apiDeps());
        },
        stop: () => this.api?.close() ?? Promise.resolve(),
      },
      {
        name: 'drivers',
        start: async () => {
          const drivers = opts.drivers ? opts.drivers.map((f) => f()).filter((d): d is Driver => d !== null) : await createDrivers(config);
          const context = driverContexts({
            site: { id: config.site, dataDir: this.dataDir, timezone: config.timezone },
            log,
            metrics: this.metrics,
            bus: this.bus,
            devices: this.devices,
            writer: () => this.writer,
            emitEvent: (type, component, data, subject) => this.emitEvent(type, component, data, subject),
            recall: (point) => latestValues(this.db.instance, point),
          });
          this.supervisor = new Supervisor(
            drivers,
            (d, fail) => context(d.name, fail),
            log,
            this.metrics,
            (driver, error, restartInMs) => {
              void this.emitEvent('driver.crashed', 'gateway', { driver, error, restartInMs }, driver).catch(() => undefined);
            },
          );
          await this.supervisor.startAll();
        },
        stop: () => this.supervisor?.stopAll() ?? Promise.resolve(),
      },
      // Stopped before the drivers go: doors still in a timed unlock are locked first.
      { name: 'locks', start: async () => undefined, stop: () => this.locks?.stop() ?? Promise.resolve() },
      { name: 'rules', start: () => this.startRules(), stop: () => this.rules?.stop() ?? Promise.resolve() },
      {
        name: 'sync',
        start: async () => {
          if (!config.sync.enabled) return;
          this.sync = new Uploader({
            instance: this.db.instance,
            dataDir: this.dataDir,
            config: config.sync,
            metrics: this.metrics.sync,
            log: log.child({ component: 'sync' }),
            onCommittedEvents: (fn) => this.bus.on('committed', (_readings, events) => fn(events)),
            commands: cloudCommandTarget({
              config,
              dataDir: this.dataDir,
              locks: this.locks,
              supervisor: () => this.supervisor,
              emitEvent: emit('sync'),
            }),
          });
          this.sync.start();
        },
        // An upload in flight is aborted; its rows stay unsent and go next time.
        stop: () => this.sync?.stop() ?? Promise.resolve(),
      },
      this.retentionService(),
    ];
  }

  private retentionService(): Service {
    let service: RetentionService | null = null;
    return {
      name: 'retention',
      start: async () => {
        service = new RetentionService(
          this.db.instance,
          this.dbPath,
          this.config.store.retention,
          this.config.sync.enabled,
          this.metrics,
          this.log,
        );
        service.start();
      },
      stop: () => service?.stop() ?? Promise.resolve(),
    };
  }

  private apiDeps(): Parameters<typeof startApi>[0] {
    return {
      http: this.config.http,
      site: this.config.site,
      dataDir: this.dataDir,
      log: this.log,
      metrics: this.metrics,
      tokens: this.tokens,
      db: this.db.instance,
      locks: this.locks,
      alerts: this.alerts,
      webhooks: this.webhooks,
      health: () => ({
        phase: this.phase,
        driversDown:
          this.phase === 'ready'
            ? Object.fromEntries(
                Object.entries(this.supervisor.status())
                  .filter(([, d]) => d.state !== 'running')
                  .map(([name, d]) => [name, d.lastError]),
              )
            : {},
      }),
      metricsText: async () => ({ contentType: this.metrics.contentType, text: await this.metrics.text() }),
      status: () => this.status(),
      devices: () => this.devices.list(),
      syncStatus: () => (this.sync ? this.sync.status() : { enabled: false }),
      sendCommand: (cmd) => this.supervisor.write(cmd),
      emitEvent: (type, component, data, subject) => this.emitEvent(type, component, data, subject),
      driverRoutes: (app) =>
        registerDriverRoutes(app, (name) => (this.supervisor?.status()[name]?.state === 'running' ? this.supervisor.get(name) : undefined)),
    };
  }

  private async startRules(): Promise<void> {
    const targets = ruleTargets({
      alerts: this.alerts,
      supervisor: () => this.supervisor,
      locks: this.locks,
      allowLists: this.config.allowLists,
      emitEvent: (type, data, subject) => this.emitEvent(type, 'rules', data, subject),
      enqueueWebhook: (endpoint, data, subject) =>
        this.webhooks.enqueueTo(endpoint, {
          id: randomUUID(),
          ts: Date.now(),
          type: 'rule.webhook',
          source: `/outpost/${this.config.site}/rules`,
          subject,
          data,
        }),
    });
    const executor = new ActionExecutor(targets, this.metrics, this.log.child({ component: 'rules' }));
    const { rules, timezone, site, devices } = this.config;
    this.rules = new RulesHost(
      { rules, timezone, site, devices: devices.map((d) => ({ id: d.id, zone: d.zone, tags: d.tags })) },
      this.db.instance,
      (f) => executor.handle(f),
      this.metrics,
      this.log,
    );
    await this.rules.start();
    this.bus.on('readings', (r) => this.rules.offerReadings(r));
    // Rules' own bookkeeping events are not facts, or a catch-all rule could feed itself.
    this.bus.on('event', (e) => {
      if (!e.type.startsWith('rule.')) this.rules.offerEvent(e);
    });
  }

  /** Records an event: CloudEvents source is `/outpost/{site}/{component}`. */
  emitEvent(type: string, component: string, data?: unknown, subject?: string): Promise<void> {
    const event: OutpostEvent = {
      id: randomUUID(),
      ts: Date.now(),
      type,
      source: `/outpost/${this.config.site}/${component}`,
      ...(subject !== undefined ? { subject } : {}),
      ...(data !== undefined ? { data } : {}),
    };
    this.bus.emit('event', event);
    return this.writer.write([], [event], { waitForSpace: true });
  }

  /** Stops the services in reverse order: input first, the store last. */
  async stop(reason = 'stop requested'): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'stopped') return;
    this.phase = 'stopping';
    this.log.info({ reason }, 'gateway stopping');
    for (const s of [...this.started].reverse()) {
      try {
        await s.stop();
      } catch (err) {
        this.log.error({ err, service: s.name }, 'service did not stop cleanly');
      }
    }
    this.started.length = 0;
    this.phase = 'stopped';
    this.log.info('gateway stopped');
  }

  status(): Record<string, unknown> {
    return {
      site: this.config.site,
      version: VERSION,
      phase: this.phase,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      drivers: this.supervisor?.status() ?? {},
      store: { path: this.dbPath, queuedRows: this.writer?.queuedRows ?? 0, nextSeq: this.writer?.nextSeq ?? null },
      devices: this.devices.size,
      api: this.api
        ? { url: this.api.url, host: this.config.http.host, port: this.api.port, tls: this.api.tls ? apiTlsSummary(this.api.tls) : null }
        : null,
      webhooks: this.webhooks?.status() ?? {},
      rssBytes: process.memoryUsage.rss(),
    };
  }
}
