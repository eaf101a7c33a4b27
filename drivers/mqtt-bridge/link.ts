// One connection to a foreign broker: connect (TLS, credentials), subscribe, reconnect
// with backoff, and acknowledge QoS 1 messages only once `handle` has resolved (the
// readings are committed; MQTT 5 only). mqtt.js hands us each QoS 1 PUBLISH through customHandleAcks
// and waits for our answer before it reads the next packet, so a broker's messages are
// handled one at a time, in order.
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { backoffDelay } from '../../gateway/kernel/backoff.js';
import type { BridgeBroker } from './schema.js';

export interface LinkHooks {
  /** Resolves once the message is dealt with (committed, or refused for good); rejects to leave it unacknowledged. */
  handle(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
  up(connected: boolean): void;
  error(err: Error, what: string): void;
}

export interface LinkStatus {
  connected: boolean;
  lastError: string | null;
  connects: number;
}

export interface LinkOptions {
  clientId: string;
  password?: string;
  initialMs: number;
  maxMs: number;
}

const STOP_WAIT_MS = 5000;
/** Unacknowledged QoS 1 messages the broker may have in flight to us. */
const RECEIVE_MAXIMUM = 64;

export class BrokerLink {
  private client: MqttClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private stopping = false;
  private readonly pending = new Set<Promise<unknown>>();
  readonly status: LinkStatus = { connected: false, lastError: null, connects: 0 };

  constructor(
    readonly cfg: BridgeBroker,
    private readonly opts: LinkOptions,
    private readonly hooks: LinkHooks,
  ) {}

  /** Reads the TLS files (a missing one throws: the supervisor retries) and starts connecting. */
  start(): void {
    const o: IClientOptions = {
      clientId: this.opts.clientId,
      clean: this.cfg.clean,
      keepalive: this.cfg.keepaliveS,
      // MQTT 5: mqtt.js offers customHandleAcks (our PUBACK after commit) only for v5, and
      // there a clean:false session lasts sessionExpiryS after we disconnect.
      protocolVersion: 5,
      properties: { sessionExpiryInterval: this.cfg.clean ? 0 : this.cfg.sessionExpiryS, receiveMaximum: RECEIVE_MAXIMUM },
      connectTimeout: 10_000,
      // Reconnects are ours (backoff below): mqtt.js would retry at a fixed period.
      reconnectPeriod: 0,
      resubscribe: false,
      customHandleAcks: (topic, message, packet: { qos?: number }, done) => this.ack(topic, message, packet.qos === 0 ? 0 : 1, done),
      ...(this.cfg.username !== undefined ? { username: this.cfg.username } : {}),
      ...(this.opts.password !== undefined ? { password: this.opts.password } : {}),
      ...(this.cfg.ca ? { ca: readFileSync(this.cfg.ca) } : {}),
      ...(this.cfg.cert ? { cert: readFileSync(this.cfg.cert) } : {}),
      ...(this.cfg.key ? { key: readFileSync(this.cfg.key) } : {}),
      rejectUnauthorized: true,
    };
    const c = mqtt.connect(this.cfg.url, o);
    this.client = c;
    c.on('connect', () => this.subscribe(c));
    // QoS 0 only: QoS 1 is handled in ack() (mqtt.js emits 'message' for it after we answer).
    c.on('message', (topic, payload, packet) => {
      if (packet.qos === 0) this.track(this.hooks.handle(topic, payload, 0).catch(() => undefined));
    });
    c.on('error', (err) => this.noteError(err, 'broker connection'));
    c.on('close', () => this.closed());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    if (!c) return;
    // Let in-flight commits finish so their PUBACKs go out; what is left is redelivered.
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => (t = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(t);
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => c.end(true, {}, () => resolve()), 2000);
      c.end(false, {}, () => {
        clearTimeout(force);
        resolve();
      });
    });
    this.setUp(false);
  }

  private ack(topic: string, payload: Buffer, qos: 0 | 1, done: (error: Error | number, code?: number) => void): void {
    const p = this.hooks.handle(topic, payload, qos).then(
      () => done(0),
      (err: Error) => {
        // Not acknowledged: the broker keeps the message and sends it again on the next
        // session, so drop this connection (mqtt.js reports the refusal as 'error').
        done(err);
        if (!this.stopping) this.client?.stream?.destroy();
      },
    );
    this.track(p);
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private subscribe(c: MqttClient): void {
    const subs = Object.fromEntries(this.cfg.subscriptions.map((s) => [s.topic, { qos: s.qos }]));
    c.subscribe(subs, (err, granted) => {
      if (err) return this.noteError(err, 'subscribe');
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length) this.noteError(new Error(`broker refused subscriptions: ${refused.join(', ')}`), 'subscribe');
      if (c !== this.client) return;
      this.attempt = 0;
      this.status.connects++;
      this.setUp(true);
    });
  }

  private closed(): void {
    this.setUp(false);
    if (this.stopping || this.timer || !this.client) return;
    const wait = backoffDelay(this.attempt++, this.opts.initialMs, this.opts.maxMs, { low: 0.5, high: 1 });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopping) this.client?.reconnect();
    }, wait);
  }

  private setUp(up: boolean): void {
    if (this.status.connected === up) return;
    this.status.connected = up;
    this.hooks.up(up);
  }

  private noteError(err: Error, what: string): void {
    this.status.lastError = `${what}: ${err.message}`;
    this.hooks.error(err, what);
  }
}
