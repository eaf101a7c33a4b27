// The HTTP driver, push side: devices POST readings to /ingest/v1/{device} on the local
// API. Each request is authenticated as that device (bearer, basic or HMAC), rate-limited
// per device, decoded whole (the MQTT forms, or the device's mapping), and answered 2xx
// only after its readings are committed. A refused request stores nothing and says why.
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { SiteView } from '../../gateway/contract/descriptor.js';
import type { Command, CommandResult, Reading } from '../../gateway/contract/types.js';
import { Agent } from 'undici';
import { DevicePoller, Slots } from './poller.js';
import { httpWrite } from './writes.js';
import { storeRejectReason } from '../../gateway/contract/errors.js';
import { WindowLimiter } from '../../gateway/kernel/rate-window.js';
import { applyMapping } from '../payloads/mapping.js';
import { PayloadError, decodeTelemetry } from '../payloads/telemetry.js';
import { DeviceAuth } from './auth.js';
import type { HttpDeviceConfig, HttpDriverConfig } from './schema.js';

export interface HttpHealth extends DriverHealth {
  devices: number;
  polled: number;
  requests: number;
  accepted: number;
}

/** What the route answers: a status and a JSON body (and Retry-After for 429). */
export interface PushAnswer {
  status: number;
  body: Record<string, unknown>;
  retryAfterS?: number;
}

interface Device {
  id: string;
  zone: string;
  cfg: HttpDeviceConfig;
  auth: DeviceAuth;
}

export class HttpDriver implements Driver<HttpHealth> {
  readonly name = 'http';
  private ctx: DriverContext | null = null;
  private readonly devices = new Map<string, Device>();
  private readonly limiter: WindowLimiter;
  private stats = { requests: 0, accepted: 0 };
  private readonly pollers: DevicePoller[] = [];
  private readonly agent: Agent;
  private readonly slots: Slots;

  constructor(
    readonly cfg: HttpDriverConfig,
    site: SiteView<HttpDeviceConfig>,
  ) {
    for (const d of site.devices) this.devices.set(d.id, { id: d.id, zone: d.zone, cfg: d.config, auth: new DeviceAuth(d.config.auth) });
    this.limiter = new WindowLimiter(cfg.requestsPerMinute, 60_000, Math.max(16, this.devices.size));
    this.agent = new Agent({ connections: cfg.maxConcurrentPolls, keepAliveTimeout: 30_000 });
    this.slots = new Slots(cfg.maxConcurrentPolls);
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx;
    for (const d of this.devices.values()) {
      const a = d.cfg.auth;
      // The secret comes from the service's environment; without it every push is refused.
      if (a?.hmac && !process.env[a.hmac.secretEnv])
        ctx.log.error({ device: d.id, env: a.hmac.secretEnv }, 'HMAC secret not set: pushes from this device will be refused');
    }
    for (const d of this.devices.values()) {
      if (!d.cfg.poll) continue;
      const p = new DevicePoller(d, d.cfg.poll, d.cfg.mapping, ctx, this.agent, this.slots, this.cfg.maxReadingsPerRequest);
      this.pollers.push(p);
      p.start();
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pollers) p.stop();
    this.pollers.length = 0;
    this.ctx = null;
    await this.agent.close();
  }

  owns(device: string): boolean {
    return this.devices.get(device)?.cfg.write !== undefined;
  }

  async write(cmd: Command): Promise<CommandResult> {
    const w = this.devices.get(cmd.device)?.cfg.write;
    if (!w) return { ok: false, detail: `"${cmd.device}" has no drivers http write template` };
    if (cmd.action !== 'write') return { ok: false, detail: 'HTTP devices take "write" commands ({point, value})' };
    return httpWrite(w, cmd, this.agent);
  }

  /** One POST from a device: `headers` as Node gives them, `body` the raw bytes. */
  async push(
    deviceId: string,
    headers: Record<string, string | string[] | undefined>,
    body: Buffer,
    now = Date.now(),
  ): Promise<PushAnswer> {
    const ctx = this.ctx;
    if (!ctx) return { status: 503, body: { error: 'the HTTP driver is not running' } };
    this.stats.requests++;
    const device = this.devices.get(deviceId);
    // An unknown device and a wrong credential look the same from outside.
    const denied = device ? await device.auth.check(headers, body, now) : 'unknown_device';
    if (denied) {
      ctx.authFailure(denied);
      this.ctx?.warnLimited(`auth:${deviceId}:${denied}`, { device: deviceId, reason: denied }, 'HTTP push refused: authentication');
      return { status: 401, body: { error: 'authentication failed' } };
    }
    const d = device!;
    const rate = this.limiter.hit(d.id, now);
    if (!rate.allowed) {
      ctx.rateLimited('device_requests');
      return {
        status: 429,
        body: { error: `more than ${rate.limit} requests a minute from "${d.id}"` },
        retryAfterS: Math.ceil(rate.resetMs / 1000),
      };
    }
    if (body.length > this.cfg.maxBodyBytes) {
      this.tooLarge();
      return { status: 413, body: { error: `${body.length}-byte body, limit ${this.cfg.maxBodyBytes} (drivers.http.maxBodyBytes)` } };
    }
    let readings: Reading[];
    try {
      readings = this.decode(d, body, now);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      ctx.reject(err.reason);
      this.ctx?.warnLimited(
        `payload:${d.id}:${err.reason}`,
        { device: d.id, reason: err.reason, err: err.message },
        'HTTP push refused: payload',
      );
      const status = err.reason === 'too_many_readings' ? 413 : 422;
      return { status, body: { error: err.message, reason: err.reason, stored: 0 } };
    }
    if (readings.length === 0) return { status: 200, body: { stored: 0 } };
    ctx.devices.seen(d.id, now, this.name, d.zone);
    try {
      await ctx.ingest(readings, { waitForSpace: true });
    } catch (err) {
      return { status: 503, body: { error: `not stored (${storeRejectReason(err)}): retry later`, stored: 0 }, retryAfterS: 1 };
    }
    this.stats.accepted += readings.length;
    return { status: 200, body: { stored: readings.length } };
  }

  /** A body over the limit (counted here whether the route or the driver refused it). */
  tooLarge(): void {
    this.ctx?.reject('payload_too_large');
  }

  private decode(d: Device, body: Buffer, now: number): Reading[] {
    if (!d.cfg.mapping) return decodeTelemetry(body, { device: d.id, now, maxReadings: this.cfg.maxReadingsPerRequest });
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new PayloadError('invalid_json', `not JSON: ${(err as Error).message}`);
    }
    const out = applyMapping(doc, d.cfg.mapping, d.id, now);
    if (out.length > this.cfg.maxReadingsPerRequest) {
      throw new PayloadError(
        'too_many_readings',
        `${out.length} readings, limit ${this.cfg.maxReadingsPerRequest} (drivers.http.maxReadingsPerRequest)`,
      );
    }
    return out;
  }

  health(): HttpHealth {
    const failing = this.pollers.filter((p) => p.lastError !== null);
    return {
      ok: this.ctx !== null,
      devices: this.devices.size,
      ...this.stats,
      polled: this.pollers.length,
      ...(failing.length > 0 ? { detail: `polls failing: ${failing.map((p) => `${p.device.id} (${p.lastError})`).join(', ')}` } : {}),
    };
  }
}
