// The cloud's storage, behind one narrow interface: routes never see SQL, so a second
// backend (PostgreSQL/TimescaleDB, see README) only has to implement CloudStore.
import type { CloudCommand, CommandAck, DesiredConfig, GatewayStatusReport, IngestResponse, Stream } from '../protocol.js';

/** A refusal that is the caller's fault; `statusCode` is what the HTTP layer answers. */
export class CloudRequestError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CloudRequestError';
  }
}

export interface GatewayCredentials {
  id: string;
  site: string;
  secret: string;
}

export interface EnrollInput {
  tokenSha256: string;
  gatewayId: string;
  site: string;
  name?: string;
  /** 32 random bytes, base64url: kept in clear because HMAC verification needs it. */
  secret: string;
}

export interface EnrollmentTokenInput {
  sha256: string;
  site: string;
  gatewayId?: string;
  /** ms since epoch; null: never expires (config bootstrap tokens). */
  expiresAt: number | null;
  createdBy: string;
}

export interface IngestBatch {
  gatewayId: string;
  site: string;
  stream: Stream;
  firstSeq: number;
  lastSeq: number;
  rows: number;
  /** The Parquet file as received (the store verifies it against the headers above). */
  body: Buffer;
}

export interface StreamInfo {
  ackedSeq: number;
  updatedAt: string | null;
  batches: number;
  insertedRows: number;
  duplicateBatches: number;
  bytes: number;
}

export interface GatewayInfo {
  id: string;
  site: string;
  name: string | null;
  enrolledAt: string;
  lastSeen: string | null;
  streams: Partial<Record<Stream, StreamInfo>>;
  status: GatewayStatusReport | null;
  /** Rows the gateway dropped before sending (sum over its last status report). */
  dropped: number;
}

export interface ReadingQuery {
  site?: string;
  gateway?: string;
  device?: string;
  point?: string;
  /** ms since epoch, inclusive */
  from?: number;
  /** ms since epoch, exclusive */
  to?: number;
  limit: number;
}

export interface CloudReading {
  gateway: string;
  site: string;
  seq: number;
  ts: string;
  device: string;
  point: string;
  value: number | null;
  text: string | null;
  unit: string | null;
  quality: string | null;
}

export interface ReadingBucket {
  gateway: string;
  device: string;
  point: string;
  bucket: string;
  count: number;
  avg: number | null;
  min: number | null;
  max: number | null;
  last: number | null;
}

export interface EventQuery {
  site?: string;
  gateway?: string;
  /** Exact type, or a prefix when it ends with `*`. */
  type?: string;
  from?: number;
  to?: number;
  limit: number;
}

export interface CloudEvent {
  gateway: string;
  site: string;
  stream: Stream;
  seq: number;
  id: string;
  time: string;
  type: string;
  source: string;
  subject: string | null;
  data: unknown;
}

export interface ExportQuery {
  stream: 'telemetry' | 'events';
  site?: string;
  gateway?: string;
  device?: string;
  from?: number;
  to?: number;
  maxRows: number;
}

export interface ExportResult {
  /** A zstd Parquet file the caller streams and then deletes. */
  file: string;
  rows: number;
  truncated: boolean;
}

export type CommandStatus = 'pending' | 'delivered' | 'done' | 'failed' | 'expired';

export interface CommandRecord extends CloudCommand {
  gatewayId: string;
  status: CommandStatus;
  expiresAt: number;
  deliveredAt: number | null;
  ackedAt: number | null;
  detail: string | null;
}

export interface NewCommand {
  gatewayId: string;
  kind: CloudCommand['kind'];
  args: Record<string, unknown>;
  requestedBy: string;
  ttlSeconds: number;
}

export interface ConfigAck {
  version: number;
  ok: boolean;
  detail?: string;
}

export interface CloudStore {
  /** Adds config bootstrap tokens that are not known yet (a consumed one stays consumed). */
  seedEnrollmentTokens(tokens: readonly EnrollmentTokenInput[]): Promise<void>;
  addEnrollmentToken(token: EnrollmentTokenInput): Promise<void>;
  /**
   * Consumes the token and creates the gateway (or rotates its secret) in one transaction.
   * Throws CloudRequestError(401) for an unknown, used, expired or mismatched token.
   */
  enroll(input: EnrollInput): Promise<void>;
  gatewayCredentials(gatewayId: string): Promise<GatewayCredentials | undefined>;
  touchGateway(gatewayId: string): Promise<void>;

  /** Verifies the batch, stores rows above the stream's high-water mark and commits. */
  ingest(batch: IngestBatch): Promise<IngestResponse>;
  setStatus(gatewayId: string, report: GatewayStatusReport): Promise<void>;

  listGateways(): Promise<GatewayInfo[]>;
  gatewayExists(gatewayId: string): Promise<boolean>;
  readings(q: ReadingQuery): Promise<CloudReading[]>;
  /** `bucket` is already validated (e.g. 15m); rows per (gateway, device, point, bucket). */
  readingBuckets(q: ReadingQuery, bucket: string): Promise<ReadingBucket[]>;
  events(q: EventQuery): Promise<CloudEvent[]>;
  exportParquet(q: ExportQuery): Promise<ExportResult>;

  addCommand(cmd: NewCommand): Promise<CloudCommand>;
  /** Unacknowledged, unexpired commands, oldest first; marks them delivered. */
  pendingCommands(gatewayId: string, limit: number): Promise<CloudCommand[]>;
  /** false when no such command belongs to the gateway; a second ack keeps the first. */
  ackCommand(gatewayId: string, commandId: string, ack: CommandAck): Promise<boolean>;
  listCommands(gatewayId: string, limit: number): Promise<CommandRecord[]>;

  /** Stores a new desired config; returns its version (previous + 1). */
  putDesiredConfig(gatewayId: string, yaml: string, by: string): Promise<number>;
  desiredConfig(gatewayId: string): Promise<DesiredConfig | undefined>;
  /** false when that version does not exist for the gateway. */
  ackDesiredConfig(gatewayId: string, ack: ConfigAck): Promise<boolean>;

  close(): Promise<void>;
}
