// The gateway: wires config → store → drivers → API, and owns start/stop. Reading the
// data path top to bottom starts here (see docs/ARCHITECTURE.md).
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { SiteConfig } from '../config/schema.js';
import { defaultDrivers } from '../drivers/index.js';
import { startApi, type Api } from './api/server.js';
import { apiTlsSummary, tlsFiles } from './api/tls.js';
import { ADMIN_TOKEN_FILE } from './api/tokens.js';
import { assertSecretFiles, inlineSecrets, type SecretFile } from './secret-files.js';
import { loadTokens, type TokenStore } from './api/tokens.js';
import { AlertStore } from './alerts.js';
import { createBus, type Bus } from './bus.js';
import { DeviceRegistry } from './devices.js';
import type { Driver, DriverContext, DriverFactory, IngestOptions } from './driver.js';
import type { MqttDriver } from '../drivers/mqtt/index.js';
import { LockController } from './locks.js';
import { ActionExecutor } from './rules/actions.js';
import { RulesHost } from './rules/host.js';
import { Uploader } from '../sync/uploader.js';
import { STAGED_CONFIG_FILE, cloudCommandTarget } from './cloud-commands.js';
import { LogLimiter, createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { openDatabase, type Database } from './store/db.js';
import { lastSeenByDevice } from './store/queries.js';
import { applyRetention } from './store/retention.js';
import { StoreWriter } from './store/writer.js';
import { Supervisor } from './supervisor.js';
import { VERSION } from './version.js';
import type { OutpostEvent, Reading } from './types.js';


export interface GatewayOptions {
  config: SiteConfig;
  log?: Logger;
  drivers?: readonly DriverFactory[];
  /** The site file, when there is one: checked like other secret files if it holds secrets inline. */
  configFile?: string;
}

export type Phase = 'starting' | 'ready' | 'stopping' | 'stopped';

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
  alerts!: AlertStore;
  private retentionTimer: NodeJS.Timeout | null = null;
  private readonly storeDropLog = new LogLimiter(60_000);
  private retentionRunning: Promise<unknown> | null = null;

  private constructor(readonly config: SiteConfig, log: Logger | undefined) {
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
      await gw.init(opts.drivers ?? defaultDrivers, opts.configFile);
    } catch (err) {
      await gw.stop('start failed').catch(() => undefined);
      throw err;
    }
    return gw;
  }

  /** Secret files this config uses; checked at start (gateway/secret-files.ts). */
  secretFiles(configFile?: string): SecretFile[] {
    const { config, dataDir } = this;
    const inline = inlineSecrets(config);
    return [
      { path: join(dataDir, ADMIN_TOKEN_FILE), what: 'the generated admin API token' },
      { path: resolve(dataDir, config.sync.credentialsFile), what: 'the cloud credentials' },
      { path: tlsFiles(config.http, dataDir).keyFile, what: 'the local API TLS key' },
      ...(config.drivers.mqtt.tls ? [{ path: config.drivers.mqtt.tls.key, what: 'the MQTT TLS key' }] : []),
      { path: join(dataDir, STAGED_CONFIG_FILE), what: 'a site config staged by the cloud' },
      ...(configFile && inline.length > 0 ? [{ path: configFile, what: `the site config, which holds secrets inline (${inline.join(', ')})` }] : []),
    ];
  }

  private async init(factories: readonly DriverFactory[], configFile: string | undefined): Promise<void> {
    const { config, log } = this;
    for (const warning of assertSecretFiles(this.secretFiles(configFile))) log.warn(warning);
    this.db = await openDatabase(this.dbPath, { memoryLimitMB: config.store.memoryLimitMB, allowedDirs: [join(this.dataDir, 'tmp')] });
    this.writer = await StoreWriter.open(this.db.writer, config.store, this.metrics, this.bus, log);
    this.alerts = new AlertStore(this.db.instance, (type, data, subject) => this.emitEvent(type, 'alerts', data, subject));
    for (const [device, ts] of await lastSeenByDevice(this.db.instance)) this.devices.seen(device, ts, 'store');
    this.tokens = loadTokens(config.http.tokens, this.dataDir, log);
    this.locks = new LockController(config.locks, () => this.supervisor, (type, data, subject) => this.emitEvent(type, 'access', data, subject), log);
    this.api = await startApi(this);
    const drivers = factories.map((f) => f(config)).filter((d): d is Driver => d !== null);
    this.supervisor = new Supervisor(drivers, (d, fail) => this.contextFor(d, fail), log, this.metrics, (driver, error, restartInMs) => {
      void this.emitEvent('driver.crashed', 'gateway', { driver, error, restartInMs }, driver).catch(() => undefined);
    });
    await this.supervisor.startAll();
    await this.startRules();
    if (config.sync.enabled) {
      this.sync = new Uploader({
        instance: this.db.instance,
        dataDir: this.dataDir,
        config: config.sync,
        metrics: this.metrics,
        log: log.child({ component: 'sync' }),
        bus: this.bus,
        commands: cloudCommandTarget({
          config,
          dataDir: this.dataDir,
          locks: this.locks,
          supervisor: () => this.supervisor,
          emitEvent: (type, data, subject) => this.emitEvent(type, 'sync', data, subject),
        }),
      });
      this.sync.start();
    }
    this.scheduleRetention();
    this.phase = 'ready';
    log.info(
      { site: config.site, http: this.api.port, db: this.dbPath, drivers: drivers.map((d) => d.name), seq: this.writer.nextSeq },
      'gateway ready',
    );
  }

  private async startRules(): Promise<void> {
    const executor = new ActionExecutor(
      {
        raiseAlert: (a) => this.alerts.raise(a),
        write: (cmd) => this.supervisor.write(cmd),
        operateLock: (id, action, actor, opts) => this.locks.operate(id, action, actor, opts),
        denyLock: (id, action, actor, detail) => this.locks.deny(id, action, actor, detail),
        allowList: (name) => this.config.allowLists[name],
        locksInGroup: (group) => this.locks.list().filter((l) => l.group === group).map((l) => l.id),
        publish: (topic, payload, qos) => {
          const mqtt = this.supervisor.get('mqtt') as MqttDriver | undefined;
          if (!mqtt) return Promise.reject(new Error('MQTT is disabled'));
          return mqtt.publish(topic, payload, qos);
        },
        emitEvent: (type, data, subject) => this.emitEvent(type, 'rules', data, subject),
      },
      this.metrics,
      this.log.child({ component: 'rules' }),
    );
    this.rules = new RulesHost({ rules: this.config.rules, timezone: this.config.timezone, site: this.config.site, devices: this.config.devices.map((d) => ({ id: d.id, zone: d.zone, tags: d.tags })) }, this.db.instance, (f) => executor.handle(f), this.metrics, this.log);
    await this.rules.start();
    this.bus.on('readings', (r) => this.rules.offerReadings(r));
    // Rules' own bookkeeping events are not facts, or a catch-all rule could feed itself.
    this.bus.on('event', (e) => {
      if (!e.type.startsWith('rule.')) this.rules.offerEvent(e);
    });
  }

  private contextFor(driver: Driver, fail: (err: Error) => void): DriverContext {
    const log = this.log.child({ driver: driver.name });
    // Input lost to a full or failing store is counted always and logged once a minute;
    // drivers log their own input errors (with device context) themselves.
    const reject = (reason: string, count = 1) => {
      this.metrics.rejects.inc({ driver: driver.name, reason }, count);
      if (reason !== 'queue_full' && reason !== 'store_error') return;
      const { log: shouldLog, suppressed } = this.storeDropLog.shouldLog(`${driver.name}:${reason}`);
      if (shouldLog) log.warn({ reason, count, suppressedSinceLastLog: suppressed }, 'input dropped: the store could not take it');
    };
    return {
      site: this.config,
      log,
      metrics: this.metrics,
      bus: this.bus,
      devices: this.devices,
      ingest: async (readings: readonly Reading[], opts: IngestOptions = {}) => {
        if (this.bus.listenerCount('readings') > 0) this.bus.emit('readings', readings);
        const { committed } = await this.writer.enqueue(readings, [], opts);
        if (opts.until !== 'queued') return committed;
        committed.catch(() => reject('store_error', readings.length));
      },
      emitEvent: (type: string, data?: unknown, subject?: string) => this.emitEvent(type, driver.name, data, subject),
      reject,
      fail,
    };
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

  private scheduleRetention(): void {
    const { retention } = this.config.store;
    const run = () => {
      if (this.retentionRunning || this.phase !== 'ready') return;
      this.retentionRunning = applyRetention(this.db.instance, this.dbPath, retention, this.metrics, this.log, Date.now(), { sync: this.config.sync.enabled })
        .catch((err: Error) => this.log.error({ err }, 'retention pass failed'))
        .finally(() => (this.retentionRunning = null));
    };
    this.retentionTimer = setInterval(run, retention.checkIntervalS * 1000);
    this.retentionTimer.unref();
    setImmediate(run);
  }

  /** Stops input first, then commits what was accepted, then closes the store. */
  async stop(reason = 'stop requested'): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'stopped') return;
    this.phase = 'stopping';
    this.log.info({ reason }, 'gateway stopping');
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.sync?.stop(); // an upload in flight is aborted; its rows stay unsent and go next time
    await this.rules?.stop(); // state snapshot; pending actions still reach the drivers
    await this.locks?.stop(); // before the drivers go: doors in a timed unlock are locked
    await this.supervisor?.stopAll();
    // A long retention pass must not eat the shutdown deadline before the final commit.
    await Promise.race([this.retentionRunning, new Promise((r) => setTimeout(r, 2000).unref())]);
    if (this.writer) {
      const queued = this.writer.queuedRows;
      await this.writer.close();
      this.log.info({ committedOnStop: queued }, 'store flushed');
    }
    await this.api?.close();
    this.db?.close();
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
      api: this.api ? { url: this.api.url, host: this.config.http.host, port: this.api.port, tls: this.api.tls ? apiTlsSummary(this.api.tls) : null } : null,
      rssBytes: process.memoryUsage.rss(),
    };
  }
}
