// Polling an HTTP device: one timer per device, all requests through one undici Agent and
// a shared limit on polls in flight. Conditional requests (ETag / Last-Modified) when the
// device offers them, so an unchanged page costs a 304. Failures (timeouts, non-2xx,
// bodies that do not decode) back off and, after offlineAfterFailures in a row, mark the
// device offline; the next good answer brings it back.
import { request, type Dispatcher } from 'undici';
import type { DriverContext } from '../../gateway/contract/driver.js';
import type { Reading } from '../../gateway/contract/types.js';
import { backoffDelay } from '../../gateway/kernel/backoff.js';
import { applyMapping, type Mapping } from '../payloads/mapping.js';
import { PayloadError, decodeTelemetry } from '../payloads/telemetry.js';
import { clientAuthHeaders } from './client-auth.js';
import type { HttpPollConfig } from './schema.js';

/** A shared count of polls in flight (drivers.http.maxConcurrentPolls): callers wait their turn. */
export class Slots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async take(): Promise<() => void> {
    if (this.busy >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    this.busy++;
    return () => {
      this.busy--;
      this.waiting.shift()?.();
    };
  }
}

const MAX_BACKOFF_MS = 300_000;
const MAX_BODY = 4 * 1024 * 1024;

export class DevicePoller {
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private online: boolean | null = null;
  private etag: string | null = null;
  private lastModified: string | null = null;
  private stopped = false;
  polls = 0;
  notModified = 0;
  lastError: string | null = null;

  constructor(
    readonly device: { id: string; zone: string },
    private readonly cfg: HttpPollConfig,
    private readonly mapping: Mapping | undefined,
    private readonly ctx: DriverContext,
    private readonly agent: Dispatcher,
    private readonly slots: Slots,
    private readonly maxReadings: number,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.pollOnce(), ms);
  }

  private async pollOnce(): Promise<void> {
    const release = await this.slots.take();
    const started = Date.now();
    let ok = false;
    try {
      const readings = await this.fetch(started);
      if (readings && readings.length > 0) await this.ctx.ingest(readings, { waitForSpace: true, until: 'queued' });
      ok = true;
    } catch (err) {
      this.failed(err as Error);
    } finally {
      release();
    }
    if (ok) this.succeeded();
    const interval = this.cfg.intervalS * 1000;
    const next = ok ? interval : Math.max(interval, backoffDelay(this.failures - 1, interval, MAX_BACKOFF_MS));
    this.schedule(Math.max(0, next - (ok ? Date.now() - started : 0)));
  }

  /** Readings of one poll; null when the page has not changed (304). */
  private async fetch(now: number): Promise<Reading[] | null> {
    this.polls++;
    const headers: Record<string, string> = { ...this.cfg.headers, ...clientAuthHeaders(this.cfg.auth) };
    if (this.etag) headers['if-none-match'] = this.etag;
    if (this.lastModified) headers['if-modified-since'] = this.lastModified;
    const res = await request(this.cfg.url, {
      method: this.cfg.method,
      headers,
      dispatcher: this.agent,
      headersTimeout: this.cfg.timeoutMs,
      bodyTimeout: this.cfg.timeoutMs,
      signal: AbortSignal.timeout(this.cfg.timeoutMs),
    });
    if (res.statusCode === 304) {
      await res.body.dump();
      this.notModified++;
      return null;
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      await res.body.dump();
      throw new PollError('http_status', `HTTP ${res.statusCode}`);
    }
    const body = Buffer.from(await res.body.arrayBuffer());
    if (body.length > MAX_BODY) throw new PollError('payload_too_large', `${body.length}-byte answer`);
    const etag = res.headers.etag;
    const lm = res.headers['last-modified'];
    this.etag = typeof etag === 'string' ? etag : null;
    this.lastModified = typeof lm === 'string' ? lm : null;
    return this.decode(body, now);
  }

  private decode(body: Buffer, now: number): Reading[] {
    const id = this.device.id;
    if (this.cfg.format === 'text') {
      const text = body.toString('utf8');
      const out: Reading[] = [];
      for (const [point, re] of Object.entries(this.cfg.patterns ?? {})) {
        const m = new RegExp(re).exec(text)?.[1];
        if (m === undefined) continue;
        const n = Number(m);
        out.push({ ts: now, device: id, point, value: Number.isFinite(n) && m.trim() !== '' ? n : m });
      }
      if (out.length === 0) throw new PayloadError('bad_shape', 'no pattern matched the page');
      return out;
    }
    if (!this.mapping) return decodeTelemetry(body, { device: id, now, maxReadings: this.maxReadings });
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new PayloadError('invalid_json', `not JSON: ${(err as Error).message}`);
    }
    return applyMapping(doc, this.mapping, id, now);
  }

  private failed(err: Error): void {
    this.failures++;
    const reason =
      err instanceof PayloadError || err instanceof PollError
        ? err.reason
        : err.name === 'TimeoutError' || /timeout/i.test(err.message)
          ? 'timeout'
          : 'unreachable';
    this.lastError = `${reason}: ${err.message}`;
    this.ctx.reject(`poll_${reason}`);
    if (this.failures === this.cfg.offlineAfterFailures || (this.online === null && this.failures === 1)) {
      this.ctx.log.warn({ device: this.device.id, failures: this.failures, err: err.message }, 'HTTP poll failing');
    }
    if (this.failures >= this.cfg.offlineAfterFailures && this.online !== false) this.setOnline(false, reason);
  }

  private succeeded(): void {
    this.failures = 0;
    this.lastError = null;
    if (this.online !== true) this.setOnline(true, 'answered');
  }

  private setOnline(online: boolean, reason: string): void {
    const first = this.online === null;
    this.online = online;
    this.ctx.devices.setOnline(this.device.id, online, 'http', this.device.zone);
    if (first && online) return; // the first good poll is no news
    const data = { device: this.device.id, zone: this.device.zone, reason, failures: this.failures };
    void this.ctx.emitEvent(online ? 'device.online' : 'device.offline', data, this.device.id).catch(() => this.ctx.reject('store_error'));
  }
}

export class PollError extends Error {
  constructor(
    readonly reason: 'http_status' | 'payload_too_large',
    message: string,
  ) {
    super(message);
    this.name = 'PollError';
  }
}
