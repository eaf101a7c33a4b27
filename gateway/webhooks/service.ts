// The delivery loop: committed events whose type an endpoint subscribes to (and rule
// actions naming an endpoint) become rows in webhook_deliveries before the first attempt,
// then are sent, signed, with retries on the configured schedule (±10 % jitter). After
// the last retry fails a row is dead (the DLQ). A 410 disables its endpoint until
// restart. Per endpoint at most `concurrency` attempts run, and one subject's deliveries
// go strictly one after the other, in order. Pending rows are reloaded at start.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { WebhookEndpoint, WebhooksConfig } from '../../config/webhooks-schema.js';
import type { OutpostEvent } from '../contract/types.js';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import { cloudEvent } from '../store/queries.js';
import { sendAttempt, type AttemptResult } from './sender.js';
import { secretBytes, signatureHeaders, typeMatcher } from './signature.js';
import { DeliveryStore, type Delivery } from './store.js';

const JITTER = 0.1;
const KEEP_DELIVERED_MS = 24 * 3600_000;
const MAX_WAKE_MS = 60_000;

export interface WebhookServiceOptions {
  instance: DuckDBInstance;
  config: WebhooksConfig;
  dataDir: string;
  metrics: Pick<Metrics, 'webhookDeliveries' | 'webhookPending'>;
  log: Logger;
  onCommittedEvents(fn: (events: readonly OutpostEvent[]) => void): () => void;
  env?: Readonly<Record<string, string | undefined>>;
}

export interface EndpointStatus {
  url: string;
  disabled: boolean;
  pending: number;
  inFlight: number;
  lastError: string | null;
  lastErrorAt: number | null;
}

interface Endpoint {
  cfg: WebhookEndpoint;
  key: Buffer;
  matches: (type: string) => boolean;
  disabled: boolean;
  inFlight: number;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Pending deliveries by ordering key, each queue in seq order; the head is the next to send. */
  queues: Map<string, Delivery[]>;
  busy: Set<string>;
  pending: number;
}

// Deliveries without a subject need no order: each gets a queue of its own.
const orderKey = (d: Pick<Delivery, 'subject' | 'id'>) => (d.subject === '' ? `#${d.id}` : `s:${d.subject}`);

/** Catch-up at start reads at most this many events a round, for at most this many rounds. */
const CATCH_UP_BATCH = 5_000;
const CATCH_UP_ROUNDS = 200;
const DELIVERED_FLUSH_MS = 10;
const MAX_CACHED_PAYLOADS = 2_000;
/** One replay re-delivers at most this many events (narrow the range for more). */
export const MAX_REPLAY = 100_000;

export class WebhookService {
  private readonly store: DeliveryStore;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private seq = 0;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopping = false;
  private readonly delivered: { id: string; attempts: number; at: number }[] = [];
  /** Bodies of fresh deliveries, so a first attempt need not read the row back (bounded; the store has them all). */
  private readonly payloads = new Map<string, string>();
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly o: WebhookServiceOptions) {
    this.store = new DeliveryStore(o.instance);
  }

  async start(): Promise<void> {
    for (const cfg of this.o.config.endpoints) {
      this.endpoints.set(cfg.id, {
        cfg,
        key: secretBytes(this.secret(cfg)),
        matches: typeMatcher(cfg.types),
        disabled: false,
        inFlight: 0,
        lastError: null,
        lastErrorAt: null,
        queues: new Map(),
        busy: new Set(),
        pending: 0,
      });
    }
    await this.store.prune(KEEP_DELIVERED_MS, this.o.config.maxDeadPerEndpoint, Date.now());
    this.seq = await this.store.maxSeq();
    let orphans = 0;
    for (const d of await this.store.pending()) {
      const ep = this.endpoints.get(d.endpoint);
      if (ep) this.add(ep, d);
      else orphans++;
    }
    if (orphans > 0) this.o.log.warn({ orphans }, 'pending webhook deliveries for endpoints no longer configured are kept, not sent');
    for (const ep of this.endpoints.values()) this.setPending(ep);
    if (this.endpoints.size > 0) {
      this.unsubscribe = this.o.onCommittedEvents((events) => {
        void this.enqueueEvents(events).catch((err: Error) => this.o.log.error({ err }, 'webhook deliveries not recorded'));
      });
      const caught = await this.catchUp();
      if (caught > 0) this.o.log.info({ events: caught }, 'webhook deliveries recorded for events committed before the last stop');
    }
    this.pump();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await this.chain.catch(() => undefined);
    // An attempt cut short stays pending with its attempt count: it is sent again after the restart.
    this.abort.abort();
    await Promise.allSettled([...this.inFlight]);
    await this.flushDelivered();
  }

  /**
   * Successes are marked in batches (one commit per DELIVERED_FLUSH_MS, not one per
   * delivery); a crash inside that window sends them again, with the same webhook-id.
   */
  private markDelivered(id: string, attempts: number, at: number): void {
    this.delivered.push({ id, attempts, at });
    this.flushTimer ??= setTimeout(() => void this.flushDelivered(), DELIVERED_FLUSH_MS);
  }

  private flushDelivered(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.delivered.splice(0);
    if (batch.length > 0) {
      this.flushing = this.flushing
        .then(() => this.store.markDelivered(batch))
        .catch((err: Error) =>
          this.o.log.error({ err, deliveries: batch.length }, 'delivered webhooks not marked: they will be sent again after a restart'),
        );
    }
    return this.flushing;
  }

  private secret(cfg: WebhookEndpoint): string {
    const env = this.o.env ?? process.env;
    const value = cfg.secretEnv !== undefined ? env[cfg.secretEnv] : readFileSync(resolve(this.o.dataDir, cfg.secretFile ?? ''), 'utf8');
    const s = value?.trim();
    if (!s) {
      const where = cfg.secretEnv !== undefined ? `environment variable ${cfg.secretEnv}` : `file ${cfg.secretFile}`;
      throw new Error(`webhook endpoint "${cfg.id}": no signing secret in ${where}`);
    }
    return s;
  }

  /** Committed events → one delivery per subscribed endpoint (and the events mark moves past them). */
  enqueueEvents(events: readonly OutpostEvent[], skip: ReadonlySet<string> = new Set()): Promise<void> {
    const rows: { ep: Endpoint; e: OutpostEvent }[] = [];
    for (const e of events) {
      for (const ep of this.endpoints.values()) if (ep.matches(e.type) && !skip.has(`${e.id} ${ep.cfg.id}`)) rows.push({ ep, e });
    }
    return this.record(
      rows,
      events.map((e) => e.id),
    );
  }

  /** Events committed after the mark but never recorded (a crash in between, the final flush at stop). */
  private async catchUp(): Promise<number> {
    let mark = await this.store.eventsMark();
    if (mark === null) {
      await this.store.setEventsMarkToNow(); // endpoints are new: history is not sent (replay is for that)
      return 0;
    }
    let n = 0;
    for (let round = 0; round < CATCH_UP_ROUNDS; round++) {
      const { events, recorded } = await this.store.eventsAfter(mark, CATCH_UP_BATCH);
      if (events.length === 0) break;
      await this.enqueueEvents(events, recorded);
      n += events.length;
      mark = events[events.length - 1].seq;
    }
    return n;
  }

  /**
   * Delivers stored events again to one endpoint, in their order (whatever its `types`, and
   * even if they were delivered before): `outpost events replay`. Returns how many.
   */
  async replay(endpoint: string, f: { since: number; until: number; type?: string; subject?: string }): Promise<number> {
    const ep = this.endpoints.get(endpoint);
    if (!ep) throw new Error(`unknown webhook endpoint "${endpoint}"`);
    const events = await this.store.eventsBetween({ ...f, limit: MAX_REPLAY });
    await this.record(
      events.map((e) => ({ ep, e })),
      [],
      true,
    );
    return events.length;
  }

  /** A rule action naming an endpoint: delivered whatever the endpoint's `types`. */
  enqueueTo(endpoint: string, e: OutpostEvent): Promise<void> {
    const ep = this.endpoints.get(endpoint);
    if (!ep) return Promise.reject(new Error(`unknown webhook endpoint "${endpoint}"`));
    return this.record([{ ep, e }]);
  }

  // Serialised, so seq order is the order rows reach the queues.
  private record(rows: { ep: Endpoint; e: OutpostEvent }[], eventIds: readonly string[] = [], replay = false): Promise<void> {
    if ((rows.length === 0 && eventIds.length === 0) || this.stopping) return Promise.resolve();
    const run = this.chain.then(async () => {
      const now = Date.now();
      const made = rows.map(({ ep, e }) => ({
        ep,
        d: { id: `msg_${randomUUID()}`, seq: ++this.seq, endpoint: ep.cfg.id, eventId: e.id, subject: e.subject ?? '', createdAt: now },
        payload: JSON.stringify(cloudEvent(e)),
      }));
      const inserted = await this.store.insert(
        made.map(({ d, payload }) => ({ ...d, payload })),
        eventIds,
        replay,
      );
      for (const { ep, d, payload } of made) {
        if (!inserted.has(d.id)) continue; // recorded already (live and catch-up met)
        if (this.payloads.size < MAX_CACHED_PAYLOADS) this.payloads.set(d.id, payload);
        this.add(ep, { ...d, attempts: 0, nextAt: now, state: 'pending', lastError: null });
        await this.bound(ep);
        this.setPending(ep);
      }
      this.pump();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private add(ep: Endpoint, d: Delivery): void {
    const k = orderKey(d);
    const q = ep.queues.get(k) ?? [];
    if (q.length === 0) ep.queues.set(k, q);
    // In seq order, but never ahead of a head already being sent.
    let i = q.length;
    while (i > (ep.busy.has(k) ? 1 : 0) && q[i - 1].seq > d.seq) i--;
    q.splice(i, 0, d);
    ep.pending++;
  }

  private remove(ep: Endpoint, d: Delivery): void {
    this.payloads.delete(d.id);
    const k = orderKey(d);
    const q = ep.queues.get(k);
    const i = q?.indexOf(d) ?? -1;
    if (!q || i < 0) return;
    q.splice(i, 1);
    if (q.length === 0) ep.queues.delete(k);
    ep.pending--;
  }

  /** Past maxPendingPerEndpoint the oldest pending deliveries not in flight go to the DLQ. */
  private async bound(ep: Endpoint): Promise<void> {
    while (ep.pending > this.o.config.maxPendingPerEndpoint) {
      let oldest: Delivery | undefined;
      for (const [k, q] of ep.queues) {
        const c = ep.busy.has(k) ? q[1] : q[0];
        if (c && (!oldest || c.seq < oldest.seq)) oldest = c;
      }
      if (!oldest) return;
      this.remove(ep, oldest);
      await this.store.update(oldest.id, 'dead', oldest.attempts, oldest.nextAt, 'dropped: too many pending deliveries');
      this.o.metrics.webhookDeliveries.inc({ endpoint: ep.cfg.id, result: 'dead' });
      this.o.log.warn({ endpoint: ep.cfg.id, id: oldest.id }, 'webhook backlog full: oldest pending delivery moved to the DLQ');
    }
  }

  private setPending(ep: Endpoint): void {
    this.o.metrics.webhookPending.set({ endpoint: ep.cfg.id }, ep.pending);
  }

  /** Starts every due attempt the concurrency and ordering allow; sleeps until the next is due. */
  private pump(): void {
    if (this.stopping) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const now = Date.now();
    let wake = now + MAX_WAKE_MS;
    for (const ep of this.endpoints.values()) {
      if (ep.disabled) continue;
      for (const [k, q] of ep.queues) {
        if (ep.inFlight >= ep.cfg.concurrency) break;
        const d = q[0];
        if (!d || ep.busy.has(k)) continue;
        if (d.nextAt > now) {
          wake = Math.min(wake, d.nextAt);
          continue;
        }
        const p = this.attempt(ep, k, d).catch((err: Error) => this.o.log.error({ err, id: d.id }, 'webhook attempt not recorded'));
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
      }
    }
    this.timer = setTimeout(() => this.pump(), Math.max(0, wake - Date.now()));
    this.timer.unref();
  }

  private async attempt(ep: Endpoint, k: string, d: Delivery): Promise<void> {
    ep.inFlight++;
    ep.busy.add(k);
    let result: AttemptResult = { kind: 'aborted' };
    try {
      const body = this.payloads.get(d.id) ?? (await this.store.payload(d.id));
      if (body === undefined) return this.remove(ep, d);
      const headers = {
        'content-type': 'application/cloudevents+json',
        ...ep.cfg.headers,
        ...signatureHeaders(ep.key, d.id, body, Date.now()),
      };
      result = await sendAttempt(ep.cfg.url, headers, body, ep.cfg.timeoutMs, this.abort.signal);
      await this.settle(ep, d, result).catch((err: unknown) => {
        d.nextAt = Date.now() + 5000; // the store refused the outcome: try again later, not in a hot loop
        throw err;
      });
    } finally {
      ep.inFlight--;
      ep.busy.delete(k);
      if (result.kind !== 'aborted') this.pump();
    }
  }

  private async settle(ep: Endpoint, d: Delivery, r: AttemptResult): Promise<void> {
    const endpoint = ep.cfg.id;
    const now = Date.now();
    const attempts = d.attempts + 1;
    if (r.kind === 'aborted') return;
    if (r.kind === 'delivered') {
      this.markDelivered(d.id, attempts, now);
      this.remove(ep, d);
      this.o.metrics.webhookDeliveries.inc({ endpoint, result: 'delivered' });
    } else if (r.kind === 'gone') {
      // The receiver asks us to stop: the delivery stays pending, nothing more is sent.
      ep.disabled = true;
      this.noteError(ep, 'HTTP 410 Gone: endpoint disabled until restart', now);
      d.attempts = attempts;
      await this.store.update(d.id, 'pending', attempts, d.nextAt, ep.lastError);
      this.o.metrics.webhookDeliveries.inc({ endpoint, result: 'disabled' });
      this.o.log.warn({ endpoint, url: ep.cfg.url }, 'webhook endpoint answered 410 Gone: disabled until restart');
    } else {
      this.noteError(ep, r.error, now);
      this.o.metrics.webhookDeliveries.inc({ endpoint, result: 'failed_attempt' });
      const schedule = this.o.config.retryScheduleMs;
      if (attempts > schedule.length) {
        await this.store.update(d.id, 'dead', attempts, now, r.error);
        this.remove(ep, d);
        this.o.metrics.webhookDeliveries.inc({ endpoint, result: 'dead' });
        this.o.log.warn({ endpoint, id: d.id, attempts, error: r.error }, 'webhook delivery dead after its last retry');
      } else {
        const wait = schedule[attempts - 1] * (1 + (Math.random() * 2 - 1) * JITTER);
        d.attempts = attempts;
        d.nextAt = now + Math.round(wait);
        d.lastError = r.error;
        await this.store.update(d.id, 'pending', attempts, d.nextAt, r.error);
      }
    }
    this.setPending(ep);
  }

  private noteError(ep: Endpoint, error: string, at: number): void {
    ep.lastError = error;
    ep.lastErrorAt = at;
  }

  status(): Record<string, EndpointStatus> {
    return Object.fromEntries(
      [...this.endpoints].map(([id, ep]) => [
        id,
        {
          url: ep.cfg.url,
          disabled: ep.disabled,
          pending: ep.pending,
          inFlight: ep.inFlight,
          lastError: ep.lastError,
          lastErrorAt: ep.lastErrorAt,
        },
      ]),
    );
  }

  // The dead-letter queue (API routes in gateway/api/webhooks.ts).
  listDead(limit: number, endpoint?: string): Promise<Delivery[]> {
    return this.store.dead(limit, endpoint);
  }

  /** Back to pending with a fresh retry schedule; undefined when no such dead delivery. */
  async retry(id: string): Promise<Delivery | undefined> {
    const d = await this.store.get(id);
    if (!d || d.state !== 'dead') return undefined;
    const ep = this.endpoints.get(d.endpoint);
    if (!ep) throw Object.assign(new Error(`endpoint "${d.endpoint}" is no longer configured`), { statusCode: 409 });
    const now = Date.now();
    await this.store.update(id, 'pending', 0, now, d.lastError);
    const revived: Delivery = { ...d, state: 'pending', attempts: 0, nextAt: now };
    this.add(ep, revived);
    this.setPending(ep);
    this.pump();
    return revived;
  }

  drop(id: string): Promise<boolean> {
    return this.store.drop(id);
  }
}
