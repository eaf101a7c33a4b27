// The two scenarios of the sync bench, run from the bench process:
//   parquet  the product: a fresh cloud API (child), the gateway (child) enrolled with it,
//            draining the backlog with its uploader (zstd Parquet batches, one in flight)
//   jsonl    the baseline: the same readings from the same DuckDB file, same batch size,
//            as gzip JSON lines from a sender (child) to a minimal receiver (child)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Agent } from 'undici';
import { stringify } from 'yaml';
import { enroll, writeCredentials } from '../../../sync/credentials.js';
import { summarize, round } from './stats.js';
import type { StageSummary } from './sync-measure.js';
import { CloudChild, ReceiverChild, RunChild, drain, withServer, type Children, type Drained, type MachineShare, type SenderReport, type Side } from './sync-procs.js';
import { GATEWAY_ID, SITE, cloudConfig, fingerprint, siteConfig, type BacklogInfo, type Fingerprint, type SyncOptions } from './sync-setup.js';

export interface ScenarioResult {
  name: 'parquet' | 'jsonl';
  format: string;
  complete: boolean;
  error: string | null;
  readings: number;
  seconds: number;
  readingsPerSec: number;
  wire: {
    /** Request bodies of the batches (what the brief calls wire bytes). */
    bodyBytes: number;
    bytesPerReading: number | null;
    /** Bytes the receiving sockets read in the window: every request with its HTTP headers. */
    socketBytesIn: number | null;
    socketBytesPerReading: number | null;
    /** jsonl: the JSON lines before gzip. */
    uncompressedBytesPerReading?: number | null;
  };
  batches: {
    count: number;
    meanRows: number | null;
    bodyBytes: { mean: number | null; min: number | null; max: number | null };
    /** Sender: making one batch (parquet: Outbox.next; jsonl: read rows + JSON lines + gzip). */
    prepareMs: { p50: number | null; max: number | null };
    /** Sender: the signed POST until the acknowledgement (the receiver's work included). */
    uploadMs: { p50: number | null; max: number | null };
  };
  sender: Side;
  receiver: Side;
  /** Where the time went, per process: named stages (see notes), largest total first. */
  split: { sender: Record<string, StageSummary>; receiver: Record<string, StageSummary> };
  machine: MachineShare;
  verified: { ok: boolean; checks: Record<string, unknown> };
  gatewayStartSeconds?: number;
}

const ms = (xs: number[]) => {
  const s = summarize(xs);
  return { p50: round(s.p50, 1), max: round(s.max, 1) };
};

async function dbFingerprint(path: string): Promise<Fingerprint> {
  const inst = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  try {
    const c = await inst.connect();
    try {
      return await fingerprint(c);
    } finally {
      c.closeSync();
    }
  } finally {
    inst.closeSync();
  }
}

const sameData = (a: Fingerprint, b: Fingerprint) =>
  a.rows === b.rows && a.distinctSeq === b.distinctSeq && a.minSeq === b.minSeq && a.maxSeq === b.maxSeq && a.hash === b.hash;

/** The batches of a drain: body sizes, rows in all, the sender's per-batch times, and (jsonl) the bytes before gzip. */
interface BatchFigures {
  bodyBytes: number[];
  rows: number;
  prepareMs: number[];
  uploadMs: number[];
  rawBytes?: number;
}

function scenarioResult(name: ScenarioResult['name'], format: string, error: string | null, d: Drained<SenderReport, unknown>, b: BatchFigures, verified: ScenarioResult['verified']): ScenarioResult {
  const n = d.report.ackedSeq;
  const seconds = d.report.window.seconds;
  const sizes = b.bodyBytes;
  const bodyBytes = sizes.reduce((s, x) => s + x, 0);
  const perReading = (bytes: number) => (n ? round(bytes / n, 2) : null);
  return {
    name,
    format,
    complete: d.report.complete,
    error,
    readings: n,
    seconds: round(seconds, 3)!,
    readingsPerSec: Math.round(n / seconds),
    wire: {
      bodyBytes,
      bytesPerReading: perReading(bodyBytes),
      socketBytesIn: d.stats.socketBytes.received,
      socketBytesPerReading: perReading(d.stats.socketBytes.received),
      ...(b.rawBytes === undefined ? {} : { uncompressedBytesPerReading: perReading(b.rawBytes) }),
    },
    batches: {
      count: sizes.length,
      meanRows: sizes.length ? Math.round(b.rows / sizes.length) : null,
      bodyBytes: {
        mean: sizes.length ? Math.round(bodyBytes / sizes.length) : null,
        min: sizes.length ? Math.min(...sizes) : null,
        max: sizes.length ? Math.max(...sizes) : null,
      },
      prepareMs: ms(b.prepareMs),
      uploadMs: ms(b.uploadMs),
    },
    sender: d.sender,
    receiver: d.receiver,
    split: { sender: d.report.split, receiver: d.stats.split },
    machine: d.machine,
    verified,
  };
}

// ---- parquet: the product ----------------------------------------------------------------

interface GatewayDrained extends SenderReport {
  startSeconds: number;
  batches: { first: number; last: number; rows: number; bytes: number; cutMs: number; uploadMs?: number }[];
  otherBodies: { calls: number; bytes: number };
  status: { telemetry: { backlogRows: number; ackedSeq: number }; lastError: string | null; consecutiveFailures: number };
  metrics: { syncRowsTotal: number; syncBytesTotal: number; syncBatchesTotal: number };
}

async function enrollGateway(cloud: CloudChild, gwDir: string): Promise<void> {
  const admin = readFileSync(cloud.adminTokenFile, 'utf8').trim();
  const res = await fetch(`${cloud.url}/api/v1/enrollment-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ site: SITE, gatewayId: GATEWAY_ID }),
  });
  const body = (await res.json()) as { token?: string; error?: string };
  if (res.status !== 201 || !body.token) throw new Error(`minting an enrollment token: HTTP ${res.status} ${body.error ?? ''}`);
  const agent = new Agent();
  try {
    const creds = await enroll(agent, cloud.url, { token: body.token, gatewayId: GATEWAY_ID, site: SITE });
    writeCredentials(join(gwDir, 'cloud-credentials.json'), creds);
  } finally {
    await agent.close();
  }
}

async function cloudTelemetry(cloud: CloudChild): Promise<Record<string, unknown> | null> {
  const admin = readFileSync(cloud.adminTokenFile, 'utf8').trim();
  const res = await fetch(`${cloud.url}/api/v1/gateways`, { headers: { authorization: `Bearer ${admin}` } });
  if (!res.ok) return null;
  const list = (await res.json()) as { id: string; streams: Record<string, Record<string, unknown>> }[];
  return list.find((g) => g.id === GATEWAY_ID)?.streams.telemetry ?? null;
}

export async function runParquet(opts: SyncOptions, root: string, gwDir: string, backlog: BacklogInfo, children: Children): Promise<ScenarioResult> {
  const cloudDir = join(root, 'cloud');
  mkdirSync(cloudDir, { recursive: true });
  const cloudYaml = join(cloudDir, 'cloud.yaml');
  writeFileSync(cloudYaml, stringify(cloudConfig(cloudDir)));
  return withServer(children, await CloudChild.start(cloudYaml), async (cloud) => {
    await enrollGateway(cloud, gwDir);
    const siteYaml = join(root, 'site.yaml');
    writeFileSync(siteYaml, stringify(siteConfig(gwDir, cloud.url, opts.batch)));
    const d = await drain<GatewayDrained, Record<string, unknown> | null>(opts.maxSeconds, children, {
      server: cloud,
      startSender: () => RunChild.gateway(siteYaml, opts.readings, opts.maxSeconds),
      roles: { sender: 'gateway (child process, Gateway.start)', receiver: 'cloud API (child process, startCloudServer)' },
      whileUp: () => cloudTelemetry(cloud),
    });
    const { report: drained, whileUp: atCloud } = d;
    const stored = await dbFingerprint(join(cloudDir, 'cloud.duckdb'));
    const batches = drained.batches;
    const same = sameData(stored, backlog.fingerprint);
    return {
      ...scenarioResult(
        'parquet',
        'the product: zstd Parquet batches cut by DuckDB (COPY … TO), HMAC-signed POST /api/v1/ingest, cloud verifies and inserts with read_parquet',
        drained.status.lastError,
        d,
        {
          bodyBytes: batches.map((b) => b.bytes),
          rows: batches.reduce((s, b) => s + b.rows, 0),
          prepareMs: batches.map((b) => b.cutMs),
          uploadMs: batches.flatMap((b) => (b.uploadMs === undefined ? [] : [b.uploadMs])),
        },
        {
          ok:
            drained.complete &&
            drained.status.telemetry.backlogRows === 0 &&
            drained.metrics.syncRowsTotal === opts.readings &&
            Number(atCloud?.insertedRows) === opts.readings &&
            same,
          checks: {
            gatewayBacklogRows: drained.status.telemetry.backlogRows,
            gatewaySyncRowsTotal: drained.metrics.syncRowsTotal,
            gatewaySyncBytesTotal: drained.metrics.syncBytesTotal,
            gatewaySyncBatchesTotal: drained.metrics.syncBatchesTotal,
            otherCalls: drained.otherBodies,
            cloudStream: atCloud,
            cloudTable: stored,
            sameAsGatewayStore: same,
          },
        },
      ),
      gatewayStartSeconds: round(drained.startSeconds, 3)!,
    };
  });
}

// ---- jsonl: the baseline --------------------------------------------------------------

interface SenderDone extends SenderReport {
  error: string | null;
  batches: { rows: number; rawBytes: number; bytes: number; prepareMs: number; uploadMs: number }[];
}

export async function runJsonl(opts: SyncOptions, root: string, dbPath: string, backlog: BacklogInfo, children: Children): Promise<ScenarioResult> {
  const dir = join(root, 'receiver');
  mkdirSync(dir, { recursive: true });
  return withServer(children, await ReceiverChild.start(dir), async (receiver) => {
    const d = await drain<SenderDone>(opts.maxSeconds, children, {
      server: receiver,
      startSender: () => RunChild.sender(dbPath, `http://127.0.0.1:${receiver.port}`, opts.batch, opts.readings, opts.maxSeconds),
      roles: { sender: 'jsonl sender (child process)', receiver: 'jsonl receiver (child process)' },
    });
    const done = d.report;
    const stored = await dbFingerprint(join(dir, 'receiver.duckdb'));
    const same = sameData(stored, backlog.fingerprint);
    return scenarioResult(
      'jsonl',
      'baseline: JSON lines {seq, ts (epoch ms), device, point, value, unit}, gzip (node zlib, default level), HMAC-signed POST to a minimal node:http receiver that gunzips, JSON.parses and appends to DuckDB',
      done.error,
      d,
      {
        bodyBytes: done.batches.map((b) => b.bytes),
        rows: done.ackedSeq,
        prepareMs: done.batches.map((b) => b.prepareMs),
        uploadMs: done.batches.map((b) => b.uploadMs),
        rawBytes: done.batches.reduce((s, b) => s + b.rawBytes, 0),
      },
      { ok: done.complete && same, checks: { receiverTable: stored, sameAsGatewayStore: same } },
    );
  });
}
