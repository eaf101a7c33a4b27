// HTTP to the cloud over undici: one keep-alive pool per gateway, connect/headers/body
// timeouts, TLS verified unless told otherwise, and every gateway call signed with the
// gateway's secret (sync/protocol.ts). The cloud's clock is the reference for signatures:
// a 401 carrying x-outpost-server-time corrects our offset once and the call is retried.
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { authorization, H } from './protocol.js';
import type { Credentials } from './credentials.js';
import type { SyncConfig } from '../config/sync-schema.js';

export interface CloudResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Parsed Retry-After in ms, when the cloud sent one. */
  retryAfterMs: number | null;
}

/** A transport failure (no HTTP answer): refused, reset, timed out, TLS. */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
  }
}

export function makeAgent(cfg: Pick<SyncConfig, 'timeouts' | 'tls'>): Agent {
  const ca = cfg.tls.caFile ? readFileSync(cfg.tls.caFile, 'utf8') : undefined;
  return new Agent({
    connections: 4,
    keepAliveTimeout: 30_000,
    connectTimeout: cfg.timeouts.connectMs,
    headersTimeout: cfg.timeouts.headersMs,
    bodyTimeout: cfg.timeouts.bodyMs,
    connect: { ...(ca ? { ca } : {}), rejectUnauthorized: !cfg.tls.insecureSkipVerify },
  });
}

/** Retry-After is either seconds or an HTTP date. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export async function httpCall(
  dispatcher: Dispatcher,
  url: string,
  opts: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: Buffer | string; signal?: AbortSignal },
): Promise<CloudResponse> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      dispatcher,
      method: opts.method,
      headers: opts.headers ?? {},
      body: opts.body ?? null,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw new TransportError(`${opts.method} ${url}: ${(err as Error).message}`, { cause: err });
  }
  let body: Buffer;
  try {
    body = Buffer.from(await res.body.arrayBuffer());
  } catch (err) {
    throw new TransportError(`${opts.method} ${url}: response body: ${(err as Error).message}`, { cause: err });
  }
  return { status: res.statusCode, headers: res.headers, body, retryAfterMs: parseRetryAfter(res.headers['retry-after']) };
}

export class CloudClient {
  private clockOffsetMs = 0;

  constructor(
    private readonly creds: Credentials,
    private readonly baseUrl: string,
    private readonly dispatcher: Dispatcher,
    private readonly signal?: AbortSignal,
  ) {}

  get gatewayId(): string {
    return this.creds.gatewayId;
  }

  /** A signed call; `key` is the idempotency key (batches) or ''. */
  async call(
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: Buffer | string; key?: string; headers?: Record<string, string> } = {},
  ): Promise<CloudResponse> {
    const body = opts.body ?? '';
    for (let attempt = 0; ; attempt++) {
      const auth = authorization(
        this.creds.gatewayId,
        this.creds.secret,
        method,
        path,
        opts.key ?? '',
        body,
        Date.now() + this.clockOffsetMs,
      );
      const headers: Record<string, string> = { ...opts.headers, [H.auth]: auth };
      if (opts.key) headers[H.idempotencyKey] = opts.key;
      const res = await httpCall(this.dispatcher, this.baseUrl + path, {
        method,
        headers,
        ...(method === 'POST' ? { body } : {}),
        ...(this.signal ? { signal: this.signal } : {}),
      });
      const serverTime = Number(res.headers[H.serverTime]);
      if (res.status === 401 && attempt === 0 && Number.isFinite(serverTime) && serverTime > 0) {
        // Our clock is off (a gateway that was down without an RTC): sign with the cloud's time.
        this.clockOffsetMs = serverTime - Date.now();
        continue;
      }
      return res;
    }
  }

  get offsetMs(): number {
    return this.clockOffsetMs;
  }
}
