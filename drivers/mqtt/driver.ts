// MQTT driver: an embedded aedes broker that devices publish to directly.
//
// Ingest happens in aedes' authorizePublish hook because aedes writes a QoS1 PUBACK
// right after that hook returns: we decode the payload, hand the readings to the store
// and call back only once they are committed, so an acknowledged reading is durable.
// QoS0 is fire-and-forget and does not wait. A malformed payload is counted, logged at
// most once per device per minute and dropped; the client stays connected. An ACL
// violation closes the connection (MQTT 3.1.1 has no negative PUBACK).
import { Aedes, type AuthenticateError, type Client, type PublishPacket } from 'aedes';
import type { SiteView } from '../../gateway/contract/descriptor.js';
import type { Driver, DriverContext, DriverHealth, Listening, Publisher } from '../../gateway/contract/driver.js';
import type { MqttMetrics } from './metrics.js';
import type { MqttDeviceConfig, MqttDriverConfig } from './schema.js';
import { LogLimiter } from '../../gateway/kernel/log.js';
import { commandArgs, type Command, type CommandResult } from '../../gateway/contract/types.js';
import { AccessControl, isLoopback, type Identity } from './access.js';
import { openListeners, type Listeners } from './listeners.js';
import { PayloadError, decodeTelemetry } from '../payloads/telemetry.js';
import { commandTopic, parseDeviceTopic, type DeviceTopic } from './topics.js';

const DRIVER = 'mqtt';
/** Sockets accepted past maxConnections before they are closed without a CONNACK. */
const HARD_LIMIT_MARGIN = 64;
/** The longest a publish waits for its client's rate budget before the client is dropped. */
const MAX_THROTTLE_MS = 10_000;

interface PublishBucket {
  tokens: number;
  at: number;
}

export interface MqttHealth extends DriverHealth {
  clients: number;
  ports: Listeners['ports'] | null;
  messages: number;
  readings: number;
  rejected: number;
}

export class MqttDriver implements Driver<MqttHealth>, Publisher, Listening {
  readonly name = DRIVER;
  private broker: Aedes | null = null;
  private listeners: Listeners | null = null;
  private ctx: DriverContext<MqttMetrics> | null = null;
  private readonly identities = new WeakMap<Client, Identity>();
  private readonly peers = new WeakMap<object, string | undefined>();
  private readonly access: AccessControl;
  private readonly malformedLog = new LogLimiter(60_000);
  private accepting = false;
  // Connection limit: sockets open now, and those accepted past drivers.mqtt.maxConnections
  // (their CONNECT is answered "server unavailable"; far past it they are closed at once).
  private openStreams = 0;
  private readonly overLimit = new WeakSet<object>();
  private readonly buckets = new WeakMap<Client, PublishBucket>();
  private readonly throttleLog = new LogLimiter(60_000);
  private readonly sitePrefix: string;
  private stats = { messages: 0, readings: 0, rejected: 0 };

  constructor(
    private readonly cfg: MqttDriverConfig,
    private readonly site: SiteView<MqttDeviceConfig>,
  ) {
    this.access = new AccessControl(site.id, site.devices, cfg.anonymous);
    this.sitePrefix = `devices/${site.id}/`;
  }

  /** Bound ports (useful when configured as 0). */
  get ports(): Listeners['ports'] | null {
    return this.listeners?.ports ?? null;
  }

  async start(ctx: DriverContext<MqttMetrics>): Promise<void> {
    this.ctx = ctx;
    const broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        void this.authenticate(client, username, password).then(
          (err) => done(err, err === null),
          (err: Error) => done(Object.assign(err, { returnCode: 3 as const }), false),
        );
      },
      authorizePublish: (client, packet, done) => {
        this.onPublish(client, packet).then(
          () => done(null),
          (err: Error) => done(err),
        );
      },
      authorizeSubscribe: (client, sub, done) => {
        const id = this.identities.get(client);
        const denied = id ? this.access.subscribeDenied(id, sub.topic) : 'not logged in';
        if (denied) {
          ctx.authFailure('subscribe_denied');
          ctx.log.warn({ client: client.id, topic: sub.topic }, `subscribe refused: ${denied}`);
        }
        done(null, denied ? null : sub);
      },
    });
    this.broker = broker;
    broker.on('client', (client) => this.onClientConnected(client));
    broker.on('clientDisconnect', (client) => this.onClientGone(client, 'disconnect'));
    broker.on('clientError', (client, err) => ctx.log.debug({ client: client.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (client, err) => ctx.log.debug({ client: client.id, err: err.message }, 'mqtt connection error'));
    try {
      this.listeners = await openListeners(this.cfg, (stream, remote) => {
        if (!this.accepting) return void stream.destroy();
        if (this.openStreams >= this.cfg.maxConnections + HARD_LIMIT_MARGIN) {
          ctx.metrics.mqttRefusedConnections.inc({ reason: 'socket_limit' });
          return void stream.destroy();
        }
        this.openStreams++;
        stream.once('close', () => this.openStreams--);
        if (this.openStreams > this.cfg.maxConnections) this.overLimit.add(stream);
        this.peers.set(stream, remote);
        broker.handle(stream);
      });
    } catch (err) {
      await new Promise<void>((r) => broker.close(() => r()));
      this.broker = null;
      throw err;
    }
    this.accepting = true;
    ctx.log.info({ ports: this.listeners.ports, host: this.cfg.host, anonymous: this.cfg.anonymous }, 'MQTT broker listening');
    if (!isLoopback(this.cfg.host) && this.site.devices.length > 0) {
      ctx.log.warn(
        { host: this.cfg.host, port: this.listeners.ports.tcp },
        'MQTT plain TCP listens off loopback: device passwords cross the network in clear; give devices that can do TLS drivers.mqtt.tls',
      );
    }
  }

  async stop(): Promise<void> {
    this.accepting = false;
    await this.listeners?.close();
    this.listeners = null;
    const broker = this.broker;
    this.broker = null;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
  }

  health(): MqttHealth {
    return {
      ok: this.broker !== null && this.accepting,
      clients: this.broker?.connectedClients ?? 0,
      ports: this.listeners?.ports ?? null,
      ...this.stats,
    };
  }

  owns(device: string): boolean {
    return this.site.devices.some((d) => d.id === device);
  }

  /** Publishes a command to the device's command topic (QoS1); the device acts on it. */
  async write(cmd: Command): Promise<CommandResult> {
    const dev = this.site.devices.find((d) => d.id === cmd.device);
    if (!this.broker || !dev) return { ok: false, detail: `device "${cmd.device}" is not a configured MQTT device` };
    const topic = commandTopic(this.site.id, dev.zone, dev.id);
    const payload = Buffer.from(JSON.stringify({ id: cmd.id, ...commandArgs(cmd), requestedBy: cmd.requestedBy, ts: Date.now() }));
    await this.publish(topic, payload, 1);
    return { ok: true, detail: `published to ${topic}` };
  }

  /** Publishes on behalf of the gateway (rules); local subscribers receive it. */
  async publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void> {
    const broker = this.broker;
    if (!broker) throw new Error('the MQTT broker is not running');
    await new Promise<void>((resolve, reject) =>
      broker.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err?: Error) => (err ? reject(err) : resolve())),
    );
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<AuthenticateError | null> {
    if (this.overLimit.has(client.conn)) {
      // Refused before the password is checked: a connection storm costs no scrypt.
      this.ctx?.metrics.mqttRefusedConnections.inc({ reason: 'max_connections' });
      this.logThrottled('connections', { limit: this.cfg.maxConnections }, 'MQTT connection refused: drivers.mqtt.maxConnections reached');
      return Object.assign(new Error(`connection limit of ${this.cfg.maxConnections} reached`), { returnCode: 3 as const });
    }
    const res = await this.access.login(username, password, this.peers.get(client.conn));
    if (res.ok) {
      this.identities.set(client, res.identity);
      return null;
    }
    this.ctx?.authFailure(res.code === 4 ? 'bad_credentials' : 'not_authorized');
    this.ctx?.log.warn({ client: client.id, remote: this.peers.get(client.conn) }, `MQTT login refused: ${res.reason}`);
    return Object.assign(new Error(res.reason), { returnCode: res.code });
  }

  private onClientConnected(client: Client): void {
    const ctx = this.ctx!;
    ctx.metrics.mqttClients.set(this.broker?.connectedClients ?? 0);
    const id = this.identities.get(client);
    if (id?.kind === 'device') this.setOnline(id.device, id.zone, true, 'connect', client.id);
  }

  private onClientGone(client: Client, reason: string): void {
    this.ctx?.metrics.mqttClients.set(this.broker?.connectedClients ?? 0);
    const id = this.identities.get(client);
    if (id?.kind === 'device' && this.accepting) this.setOnline(id.device, id.zone, false, reason, client.id);
  }

  // Records a state change once: a disconnect right after an LWT "offline" adds nothing.
  private setOnline(device: string, zone: string, online: boolean, reason: string, clientId?: string): void {
    const ctx = this.ctx!;
    const known = ctx.devices.state(device);
    ctx.devices.setOnline(device, online, DRIVER, zone);
    if (known && known.online === online && known.via === DRIVER) return;
    void ctx
      .emitEvent(online ? 'device.online' : 'device.offline', { device, zone, reason, clientId }, device)
      .catch((err: Error) => ctx.log.error({ err, device }, 'could not record device status event'));
  }

  private async onPublish(client: Client | null, packet: PublishPacket): Promise<void> {
    const ctx = this.ctx!;
    // client is null only for wills of long-gone clients (replayed by aedes): allow.
    const id = client ? this.identities.get(client) : undefined;
    if (client && id) {
      const denied = this.access.publishDenied(id, packet.topic);
      if (denied) {
        ctx.authFailure('publish_denied');
        ctx.log.warn({ client: client.id, topic: packet.topic }, `publish refused, closing connection: ${denied}`);
        throw new Error(denied);
      }
    }
    if (client && this.cfg.maxMessagesPerSecond > 0) await this.throttle(client, packet);
    const topic = parseDeviceTopic(packet.topic);
    if (!topic) {
      // Under our own devices/{site}/ tree a topic we cannot read is a device mistake: count it.
      if (packet.topic.startsWith(this.sitePrefix)) this.badTopic(packet.topic, client?.id);
      return; // anything else is plain broker traffic
    }
    if (topic.site !== this.site.id || topic.kind === 'command') return;
    if (topic.kind === 'status') return this.onStatus(topic, packet);
    // A QoS2 retransmission (DUP) that aedes already holds was ingested the first time:
    // aedes' own duplicate check runs after this hook, so do it here to store it once.
    if (client && packet.qos === 2 && packet.dup && (await this.alreadyReceived(client, packet))) return;
    this.stats.messages++;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    let readings;
    try {
      if (payload.length > this.cfg.maxPayloadBytes) {
        throw new PayloadError(
          'payload_too_large',
          `${payload.length} bytes, limit ${this.cfg.maxPayloadBytes} (drivers.mqtt.maxPayloadBytes)`,
        );
      }
      readings = decodeTelemetry(payload, {
        device: topic.device,
        ...(topic.point !== undefined ? { point: topic.point } : {}),
        now: Date.now(),
        maxReadings: this.cfg.maxReadingsPerMessage,
      });
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      this.malformed(topic, packet.topic, err, client?.id);
      return; // acknowledged and dropped: the client stays connected
    }
    if (readings.length === 0) return;
    ctx.devices.seen(topic.device, Date.now(), DRIVER, topic.zone);
    this.stats.readings += readings.length;
    // QoS1/2: PUBACK only after commit. QoS0: wait only for room in the queue, so a fast
    // publisher is slowed through TCP instead of filling memory; dropped if it stays full.
    if (packet.qos > 0) return ctx.ingest(readings, { waitForSpace: true });
    await ctx.offer(readings, { waitForSpace: true });
  }

  /**
   * Holds a client to drivers.mqtt.maxMessagesPerSecond: a publish over its budget waits
   * (aedes reads no more from that client meanwhile, so TCP slows it down). A client that
   * would have to wait over MAX_THROTTLE_MS is disconnected instead; an unacknowledged
   * QoS1/2 message is then re-sent by the client, so nothing acknowledged is lost.
   */
  private async throttle(client: Client, packet: PublishPacket): Promise<void> {
    const rate = this.cfg.maxMessagesPerSecond;
    let b = this.buckets.get(client);
    if (!b) this.buckets.set(client, (b = { tokens: rate, at: Date.now() }));
    const now = Date.now();
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) * rate) / 1000) - 1;
    b.at = now;
    if (b.tokens >= 0) return;
    const waitMs = (-b.tokens * 1000) / rate;
    const ctx = this.ctx!;
    if (waitMs > MAX_THROTTLE_MS) {
      ctx.rateLimited('disconnected');
      this.logThrottled(client.id, { client: client.id, rate }, 'MQTT client far over drivers.mqtt.maxMessagesPerSecond: disconnected');
      b.tokens += 1; // this message is not taken
      client.close();
      throw new Error('publish rate limit exceeded');
    }
    ctx.rateLimited('throttled');
    this.logThrottled(
      client.id,
      { client: client.id, rate, qos: packet.qos },
      'MQTT client over drivers.mqtt.maxMessagesPerSecond: slowed down',
    );
    await new Promise((r) => setTimeout(r, waitMs));
  }

  private logThrottled(key: string, fields: Record<string, unknown>, msg: string): void {
    const { log, suppressed } = this.throttleLog.shouldLog(key);
    if (log) this.ctx?.log.warn({ ...fields, suppressedSinceLastLog: suppressed }, msg);
  }

  private alreadyReceived(client: Client, packet: PublishPacket): Promise<boolean> {
    // aedes' typings omit its persistence; incomingGetPacket rejects when it has no such packet.
    const persistence = (
      this.broker as unknown as { persistence: { incomingGetPacket(c: Client, p: PublishPacket): Promise<unknown> } } | null
    )?.persistence;
    return persistence
      ? persistence.incomingGetPacket(client, packet).then(
          () => true,
          () => false,
        )
      : Promise.resolve(false);
  }

  private onStatus(topic: DeviceTopic, packet: PublishPacket): void {
    const text = packet.payload.toString().trim().toLowerCase();
    let online: boolean | undefined;
    if (text === 'online' || text === '1' || text === 'true') online = true;
    else if (text === 'offline' || text === '0' || text === 'false') online = false;
    else {
      try {
        const doc = JSON.parse(text) as { online?: unknown; status?: unknown };
        if (typeof doc.online === 'boolean') online = doc.online;
        else if (doc.status === 'online' || doc.status === 'offline') online = doc.status === 'online';
      } catch {
        /* handled below */
      }
    }
    if (online === undefined) {
      this.malformed(topic, packet.topic, new PayloadError('bad_shape', 'status must be online/offline or {"online": bool}'), undefined);
      return;
    }
    this.setOnline(topic.device, topic.zone, online, 'status', undefined);
  }

  private badTopic(rawTopic: string, clientId: string | undefined): void {
    const device = rawTopic.split('/')[3] ?? '?';
    const where = { device, zone: '', site: this.site.id, kind: 'telemetry' as const };
    this.malformed(
      where,
      rawTopic,
      new PayloadError('bad_topic', 'topic must be devices/{site}/{zone}/{device}/telemetry[/{point}] or .../status'),
      clientId,
    );
  }

  private malformed(topic: DeviceTopic, rawTopic: string, err: PayloadError, clientId: string | undefined): void {
    const ctx = this.ctx!;
    this.stats.rejected++;
    ctx.reject(err.reason);
    const { log, suppressed } = this.malformedLog.shouldLog(topic.device);
    if (log) {
      ctx.log.warn(
        { device: topic.device, topic: rawTopic, client: clientId, reason: err.reason, suppressedSinceLastLog: suppressed },
        `malformed payload dropped: ${err.message}`,
      );
    }
  }
}
