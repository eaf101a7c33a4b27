// The MQTT bridge: subscribes to topics on existing brokers (zigbee2mqtt, Tasmota, any
// JSON-over-MQTT equipment) and ingests what they carry. A topic names its device through
// the subscription's template; only devices listed in devices[] with a `bridge` section
// for that broker are accepted, so a foreign broker cannot invent devices. QoS 1
// messages are acknowledged to the broker only once committed.
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { SiteView } from '../../gateway/contract/descriptor.js';
import type { Reading } from '../../gateway/contract/types.js';
import { storeRejectReason } from '../../gateway/contract/errors.js';
import { applyMapping } from '../payloads/mapping.js';
import { PayloadError, decodeTelemetry } from '../payloads/telemetry.js';
import { BrokerLink, type LinkStatus } from './link.js';
import type { BridgeMetrics } from './metrics.js';
import type { BridgeBroker, BridgeDeviceConfig, BridgeDriverConfig, BridgeSubscription } from './schema.js';
import { deviceName, matches } from './topics.js';

export interface BridgeHealth extends DriverHealth {
  brokers: Record<string, LinkStatus & { messages: number; stored: number }>;
}

interface Device {
  id: string;
  zone: string;
}

type Result = 'stored' | 'offered' | 'unknown_device' | 'rejected' | 'store_failed' | 'unmatched';

class StoreFailed extends Error {}

export class BridgeDriver implements Driver<BridgeHealth> {
  readonly name = 'bridge';
  private ctx: DriverContext<BridgeMetrics> | null = null;
  private readonly links = new Map<string, BrokerLink>();
  private readonly stats = new Map<string, { messages: number; stored: number }>();
  /** broker id → name in topic → device. */
  private readonly devices = new Map<string, Map<string, Device>>();

  constructor(
    readonly cfg: BridgeDriverConfig,
    site: SiteView<BridgeDeviceConfig>,
  ) {
    for (const d of site.devices) {
      let byName = this.devices.get(d.config.broker);
      if (!byName) this.devices.set(d.config.broker, (byName = new Map<string, Device>()));
      byName.set(d.config.name ?? d.id, { id: d.id, zone: d.zone });
    }
  }

  async start(ctx: DriverContext): Promise<void> {
    const c = ctx as DriverContext<BridgeMetrics>;
    this.ctx = c;
    for (const b of this.cfg.brokers) {
      this.stats.set(b.id, { messages: 0, stored: 0 });
      c.metrics.bridgeConnected.set({ broker: b.id }, 0);
      let password: string | undefined;
      if (b.passwordEnv) {
        password = process.env[b.passwordEnv];
        if (password === undefined) c.log.error({ broker: b.id, env: b.passwordEnv }, 'bridge password not set: connecting without it');
      }
      const link = new BrokerLink(
        b,
        {
          clientId: b.clientId ?? `outpost-${ctx.site.id}-${b.id}`,
          initialMs: this.cfg.reconnect.initialMs,
          maxMs: Math.max(this.cfg.reconnect.initialMs, this.cfg.reconnect.maxMs),
          ...(password !== undefined ? { password } : {}),
        },
        {
          handle: (topic, payload, qos) => this.handle(b, topic, payload, qos),
          up: (up) => {
            this.ctx?.metrics.bridgeConnected.set({ broker: b.id }, up ? 1 : 0);
            this.ctx?.log.info({ broker: b.id, url: b.url }, up ? 'bridge connected and subscribed' : 'bridge disconnected');
          },
          error: (err, what) =>
            this.ctx?.warnLimited(`broker:${b.id}:${what}`, { broker: b.id, err: err.message }, `bridge: ${what} failed`),
        },
      );
      this.links.set(b.id, link);
      link.start();
    }
  }

  async stop(): Promise<void> {
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((l) => l.stop()));
    this.ctx = null;
  }

  /** One message. Resolves when it may be acknowledged; rejects (StoreFailed) when the store did not take it. */
  private async handle(b: BridgeBroker, topic: string, payload: Buffer, qos: 0 | 1): Promise<void> {
    const ctx = this.ctx;
    if (!ctx) throw new StoreFailed('the bridge is stopping');
    const stats = this.stats.get(b.id)!;
    stats.messages++;
    const count = (result: Result) => ctx.metrics.bridgeMessages.inc({ broker: b.id, result });
    const sub = b.subscriptions.find((s) => matches(s.topic, topic));
    const name = sub ? deviceName(sub.device, topic) : null;
    if (!sub || name === null) {
      // A broker may send what another client of the same session subscribed to.
      count('unmatched');
      ctx.reject('bad_topic');
      this.ctx?.warnLimited(`topic:${b.id}`, { broker: b.id, topic }, 'bridge: message on a topic no subscription names a device for');
      return;
    }
    const device = this.devices.get(b.id)?.get(name);
    if (!device) {
      count('unknown_device');
      ctx.reject('unknown_device');
      this.ctx?.warnLimited(
        `unknown:${b.id}:${name}`,
        { broker: b.id, topic, name },
        'bridge: message for a device not listed in devices[] (with bridge.broker) refused',
      );
      return;
    }
    const now = Date.now();
    let readings: Reading[];
    try {
      readings = this.decode(sub, device.id, payload, now);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      count('rejected');
      ctx.reject(err.reason);
      this.ctx?.warnLimited(
        `payload:${device.id}:${err.reason}`,
        { broker: b.id, device: device.id, topic, reason: err.reason, err: err.message },
        'bridge: payload refused',
      );
      return; // acknowledged: a redelivery would be refused again
    }
    ctx.devices.seen(device.id, now, this.name, device.zone);
    if (readings.length === 0) return;
    if (qos === 0) {
      count('offered');
      if (await ctx.offer(readings, { waitForSpace: true })) stats.stored += readings.length;
      return;
    }
    try {
      await ctx.ingest(readings, { waitForSpace: true });
    } catch (err) {
      count('store_failed');
      this.ctx?.warnLimited(
        `store:${b.id}`,
        { broker: b.id, device: device.id, reason: storeRejectReason(err) },
        'bridge: not stored, left unacknowledged for the broker to redeliver',
      );
      throw new StoreFailed(`not stored (${storeRejectReason(err)})`);
    }
    count('stored');
    stats.stored += readings.length;
  }

  private decode(sub: BridgeSubscription, device: string, payload: Buffer, now: number): Reading[] {
    if (payload.length > this.cfg.maxPayloadBytes) {
      throw new PayloadError('payload_too_large', `${payload.length}-byte message, limit ${this.cfg.maxPayloadBytes}`);
    }
    const max = this.cfg.maxReadingsPerMessage;
    if (!sub.mapping) return decodeTelemetry(payload, { device, now, maxReadings: max });
    if (payload.length === 0) throw new PayloadError('empty', 'empty payload');
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      throw new PayloadError('invalid_json', `not JSON: ${(err as Error).message}`);
    }
    const out = applyMapping(doc, sub.mapping, device, now);
    if (out.length > max) throw new PayloadError('too_many_readings', `${out.length} readings, limit ${max}`);
    return out;
  }

  health(): BridgeHealth {
    const brokers: BridgeHealth['brokers'] = {};
    for (const [id, l] of this.links) brokers[id] = { ...l.status, ...(this.stats.get(id) ?? { messages: 0, stored: 0 }) };
    const down = Object.entries(brokers)
      .filter(([, s]) => !s.connected)
      .map(([id, s]) => `${id}${s.lastError ? ` (${s.lastError})` : ''}`);
    return { ok: this.ctx !== null && down.length === 0, ...(down.length ? { detail: `not connected: ${down.join(', ')}` } : {}), brokers };
  }
}
