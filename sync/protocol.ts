// The gateway ↔ cloud sync contract, shared by the uploader (gateway side) and the cloud
// API, so neither can drift from the other. sync/README.md describes it in prose.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Stream } from '../gateway/kernel/streams.js';
import {
  EVENT_COLUMNS as STORE_EVENT_COLUMNS,
  READING_COLUMNS as STORE_READING_COLUMNS,
  wireType,
  type Column,
} from '../gateway/kernel/columns.js';

export { PRIORITY_EVENT_PATTERNS, STREAMS, isStream, type Stream } from '../gateway/kernel/streams.js';

/** Parquet columns of each stream's batch file, in order: the store's columns, JSON as text. */
const wire = (cols: readonly Column[]) => cols.map((c) => [c.name, wireType(c)] as const);
export const READING_COLUMNS = wire(STORE_READING_COLUMNS);
export const EVENT_COLUMNS = wire(STORE_EVENT_COLUMNS);
export const columnsOf = (s: Stream) => (s === 'telemetry' ? READING_COLUMNS : EVENT_COLUMNS);

export const PARQUET_MEDIA_TYPE = 'application/vnd.apache.parquet';

/** Request headers (lower case, as node delivers them). */
export const H = {
  auth: 'authorization',
  stream: 'x-outpost-stream',
  firstSeq: 'x-outpost-first-seq',
  lastSeq: 'x-outpost-last-seq',
  rows: 'x-outpost-rows',
  idempotencyKey: 'idempotency-key',
  serverTime: 'x-outpost-server-time',
} as const;

/** Signed requests older or newer than this (by the cloud's clock) are refused as replays. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
export const AUTH_SCHEME = 'Outpost-HMAC';

export const batchKey = (gatewayId: string, stream: Stream, first: number, last: number) => `${gatewayId}:${stream}:${first}-${last}`;

export const sha256Hex = (body: Uint8Array | string) => createHash('sha256').update(body).digest('hex');

/** What is signed: method, path (with query), timestamp, idempotency key (or ''), body digest. */
function signingString(method: string, path: string, ts: number, key: string, bodySha256: string): string {
  return `${method.toUpperCase()}\n${path}\n${ts}\n${key}\n${bodySha256}`;
}

export function sign(secret: string, method: string, path: string, ts: number, key: string, body: Uint8Array | string): string {
  return createHmac('sha256', secret)
    .update(signingString(method, path, ts, key, sha256Hex(body)))
    .digest('hex');
}

/** `Outpost-HMAC gw=<gatewayId>, ts=<ms since epoch>, sig=<hex>` */
export function authorization(
  gatewayId: string,
  secret: string,
  method: string,
  path: string,
  key: string,
  body: Uint8Array | string,
  now = Date.now(),
): string {
  return `${AUTH_SCHEME} gw=${gatewayId}, ts=${now}, sig=${sign(secret, method, path, now, key, body)}`;
}

export interface ParsedAuth {
  gatewayId: string;
  ts: number;
  sig: string;
}

export function parseAuthorization(header: string | undefined): ParsedAuth | null {
  if (!header?.startsWith(`${AUTH_SCHEME} `)) return null;
  const parts = new Map<string, string>();
  for (const kv of header.slice(AUTH_SCHEME.length + 1).split(',')) {
    const i = kv.indexOf('=');
    if (i > 0) parts.set(kv.slice(0, i).trim(), kv.slice(i + 1).trim());
  }
  const gatewayId = parts.get('gw');
  const ts = Number(parts.get('ts'));
  const sig = parts.get('sig');
  if (!gatewayId || !Number.isSafeInteger(ts) || !sig || !/^[0-9a-f]{64}$/.test(sig)) return null;
  return { gatewayId, ts, sig };
}

/** Constant-time check of a request signature. */
export function verifySignature(
  secret: string,
  auth: ParsedAuth,
  method: string,
  path: string,
  key: string,
  body: Uint8Array | string,
): boolean {
  const want = Buffer.from(sign(secret, method, path, auth.ts, key, body), 'hex');
  const got = Buffer.from(auth.sig, 'hex');
  return want.length === got.length && timingSafeEqual(want, got);
}

/** POST /api/v1/enroll body → response. */
export interface EnrollRequest {
  token: string;
  gatewayId: string;
  site: string;
  name?: string;
}
export interface EnrollResponse {
  gatewayId: string;
  site: string;
  secret: string;
}

/** POST /api/v1/ingest response (200 for new and for already-committed batches alike). */
export interface IngestResponse {
  stream: Stream;
  /** The stream's high-water mark after this batch: every row with seq ≤ ackedSeq is committed. */
  ackedSeq: number;
  /** Rows of this batch newly stored (0 for a retry of a committed batch). */
  inserted: number;
  duplicate: boolean;
}

export interface StreamStatus {
  /** Rows not yet acknowledged by the cloud. */
  backlogRows: number;
  /** Approximate bytes of that backlog in the gateway store. */
  backlogBytes: number;
  /** Timestamp (ms) of the oldest unsent row, null when none. */
  oldestUnsentTs: number | null;
  ackedSeq: number;
  /** Rows dropped by the disk quota before they could be sent (telemetry only, so far). */
  dropped: number;
}

/** POST /api/v1/gateways/me/status body: what `outpost sync status` shows. */
export interface GatewayStatusReport {
  version: string;
  at: number;
  streams: Record<Stream, StreamStatus>;
  lastSuccessAt: number | null;
  lastError: string | null;
}

/** A command queued by the cloud for one gateway (GET /api/v1/gateways/me/commands). */
export interface CloudCommand {
  id: string;
  kind: 'lock' | 'write';
  /** lock: { lock, action: 'lock'|'unlock', seconds? }; write: { device, point, value } */
  args: Record<string, unknown>;
  requestedBy: string;
  createdAt: number;
}
export interface CommandAck {
  ok: boolean;
  detail?: string;
}

/** GET /api/v1/gateways/me/config: the desired site config, when the office set one. */
export interface DesiredConfig {
  version: number;
  yaml: string;
}
