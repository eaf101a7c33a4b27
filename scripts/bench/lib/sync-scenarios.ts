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
import { MachineCpu } from './rules-diag.js';
import { summarize, round } from './stats.js';
import { mb, type StageSummary, type WindowFigures } from './sync-measure.js';
import { CloudChild, ReceiverChild, RssSampler, RunChild } from './sync-procs.js';
import { GATEWAY_ID, SITE, cloudConfig, fingerprint, siteConfig, type BacklogInfo, type Fingerprint, type SyncOptions } from './sync-setup.js';

/** Time allowed on top of --max-seconds for a child to report (start-up, stats). */
const REPORT_GRACE_MS = 60_000;

export interface Side {
  role: string;
  pid: number;
  /** CPU of the whole process (all threads) over the drain window; 100 = one core. */
  cpuPercent: number | null;
  /** CPU time per reading drained (µs): what the drain costs, whatever the rate. */
  cpuMicrosPerReading: number | null;
  /** Main-thread busy share (event-loop utilisation) in the window; measured inside the child. */
  mainThreadBusyPercent: number | null;
  /** VmHWM: the process's RSS high-water mark over its whole life (start-up included). */
  peakRssMB: number | null;
  /** The highest RSS sampled during the drain window. */
  peakRssInWindowMB: number | null;
}

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
  /** All CPUs of the machine over the window (100 = one core), and what neither side used (this bench, anything else running). */
  machine: { cpuPercent: number | null; otherProcessesCpuPercent: number | null };
  verified: { ok: boolean; checks: Record<string, unknown> };
  gatewayStartSeconds?: number;
}

function machineShare(all: number | null, a: Side, b: Side): ScenarioResult['machine'] {
  const ours = (a.cpuPercent ?? 0) + (b.cpuPercent ?? 0);
  return { cpuPercent: all, otherProcessesCpuPercent: all === null ? null : Math.max(0, Math.round(all - ours)) };
}

const ms = (xs: number[]) => {
  const s = summarize(xs);
  return { p50: round(s.p50, 1), max: round(s.max, 1) };
};

function side(role: string, pid: number, cpuSeconds: number | null, seconds: number, readings: number, busyPercent: number | null, hwm: number | null, sampled: number | null): Side {
  return {
    role,
    pid,
    cpuPercent: cpuSeconds === null ? null : round((100 * cpuSeconds) / seconds, 0),
    cpuMicrosPerReading: cpuSeconds === null || readings === 0 ? null : round((cpuSeconds * 1e6) / readings, 2),
    mainThreadBusyPercent: busyPercent,
    peakRssMB: mb(hwm),
    peakRssInWindowMB: mb(sampled),
  };
}

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

function cpuDelta(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : b - a;
}

/** Everything a scenario registers for cleanup on an interrupted run. */
export type Children = Set<{ killNow(): void }>;

// ---- parquet: the product ----------------------------------------------------------------

interface GatewayDrained {
  complete: boolean;
  startSeconds: number;
  ackedSeq: number;
  window: WindowFigures;
  batches: { first: number; last: number; rows: number; bytes: number; cutMs: number; uploadMs?: number }[];
  otherBodies: { calls: number; bytes: number };
  split: Record<string, StageSummary>;
  status: { telemetry: { backlogRows: number; ackedSeq: number }; lastError: string | null; consecutiveFailures: number };
  metrics: { syncRowsTotal: number; syncBytesTotal: number; syncBatchesTotal: number };
}

interface ServerStats {
  mainThreadBusyPercent: number;
  split: Record<string, StageSummary>;
  socketBytes: { received: number; sent?: number };
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
  const cloud = await CloudChild.start(cloudYaml);
  children.add(cloud);
  let gw: RunChild | null = null;
  try {
    await enrollGateway(cloud, gwDir);
    const siteYaml = join(root, 'site.yaml');
    writeFileSync(siteYaml, stringify(siteConfig(gwDir, cloud.url, opts.batch)));
    await cloud.reset();
    gw = RunChild.gateway(siteYaml, opts.readings, opts.maxSeconds);
    children.add(gw);
    const sampler = new RssSampler([gw.pid, cloud.pid]);
    sampler.start();
    await gw.started();
    await cloud.mark();
    const t0 = performance.now();
    const machine = new MachineCpu();
    const cloudCpu0 = cloud.cpuSeconds();
    const drained = await gw.result<GatewayDrained>(opts.maxSeconds * 1000 + REPORT_GRACE_MS);
    const outerSeconds = (performance.now() - t0) / 1000;
    const cloudCpu = cpuDelta(cloudCpu0, cloud.cpuSeconds());
    const machineAll = machine.percent();
    sampler.stop();
    const cloudStats = await cloud.stats<ServerStats>();
    await gw.exited();
    const atCloud = await cloudTelemetry(cloud);
    const cloudHwm = cloud.memory()?.hwm ?? null;
    await cloud.stop();
    const stored = await dbFingerprint(join(cloudDir, 'cloud.duckdb'));

    const n = drained.ackedSeq;
    const seconds = drained.window.seconds;
    const batches = drained.batches;
    const bodyBytes = batches.reduce((s, b) => s + b.bytes, 0);
    const sizes = batches.map((b) => b.bytes);
    const gwSide = side('gateway (child process, Gateway.start)', gw.pid, drained.window.cpuSeconds, seconds, n, drained.window.mainThreadBusyPercent, drained.window.vmHwmMB === null ? null : drained.window.vmHwmMB * 2 ** 20, Math.max(sampler.peak.get(gw.pid) ?? 0, drained.window.peakRssSampledMB * 2 ** 20));
    const cloudSide = side('cloud API (child process, startCloudServer)', cloud.pid, cloudCpu, outerSeconds, n, cloudStats.mainThreadBusyPercent, cloudHwm, sampler.peak.get(cloud.pid) ?? null);
    return {
      name: 'parquet',
      format: 'the product: zstd Parquet batches cut by DuckDB (COPY … TO), HMAC-signed POST /api/v1/ingest, cloud verifies and inserts with read_parquet',
      complete: drained.complete,
      error: drained.status.lastError,
      readings: n,
      seconds: round(seconds, 3)!,
      readingsPerSec: Math.round(n / seconds),
      wire: {
        bodyBytes,
        bytesPerReading: n ? round(bodyBytes / n, 2) : null,
        socketBytesIn: cloudStats.socketBytes.received,
        socketBytesPerReading: n ? round(cloudStats.socketBytes.received / n, 2) : null,
      },
      batches: {
        count: batches.length,
        meanRows: batches.length ? Math.round(batches.reduce((s, b) => s + b.rows, 0) / batches.length) : null,
        bodyBytes: {
          mean: sizes.length ? Math.round(bodyBytes / sizes.length) : null,
          min: sizes.length ? Math.min(...sizes) : null,
          max: sizes.length ? Math.max(...sizes) : null,
        },
        prepareMs: ms(batches.map((b) => b.cutMs)),
        uploadMs: ms(batches.flatMap((b) => (b.uploadMs === undefined ? [] : [b.uploadMs]))),
      },
      sender: gwSide,
      receiver: cloudSide,
      split: { sender: drained.split, receiver: cloudStats.split },
      machine: machineShare(machineAll, gwSide, cloudSide),
      verified: {
        ok:
          drained.complete &&
          drained.status.telemetry.backlogRows === 0 &&
          drained.metrics.syncRowsTotal === opts.readings &&
          Number(atCloud?.insertedRows) === opts.readings &&
          sameData(stored, backlog.fingerprint),
        checks: {
          gatewayBacklogRows: drained.status.telemetry.backlogRows,
          gatewaySyncRowsTotal: drained.metrics.syncRowsTotal,
          gatewaySyncBytesTotal: drained.metrics.syncBytesTotal,
          gatewaySyncBatchesTotal: drained.metrics.syncBatchesTotal,
          otherCalls: drained.otherBodies,
          cloudStream: atCloud,
          cloudTable: stored,
          sameAsGatewayStore: sameData(stored, backlog.fingerprint),
        },
      },
      gatewayStartSeconds: round(drained.startSeconds, 3)!,
    };
  } finally {
    if (gw) {
      await gw.stop();
      children.delete(gw);
    }
    await cloud.stop();
    children.delete(cloud);
  }
}

// ---- jsonl: the baseline --------------------------------------------------------------

interface SenderDone {
  complete: boolean;
  ackedSeq: number;
  error: string | null;
  window: WindowFigures;
  batches: { rows: number; rawBytes: number; bytes: number; prepareMs: number; uploadMs: number }[];
  split: Record<string, StageSummary>;
}

export async function runJsonl(opts: SyncOptions, root: string, dbPath: string, backlog: BacklogInfo, children: Children): Promise<ScenarioResult> {
  const dir = join(root, 'receiver');
  mkdirSync(dir, { recursive: true });
  const receiver = await ReceiverChild.start(dir);
  children.add(receiver);
  let sender: RunChild | null = null;
  try {
    await receiver.reset();
    sender = RunChild.sender(dbPath, `http://127.0.0.1:${receiver.port}`, opts.batch, opts.readings, opts.maxSeconds);
    children.add(sender);
    const sampler = new RssSampler([sender.pid, receiver.pid]);
    sampler.start();
    await sender.started();
    await receiver.mark();
    const t0 = performance.now();
    const machine = new MachineCpu();
    const cpu0 = receiver.cpuSeconds();
    const done = await sender.result<SenderDone>(opts.maxSeconds * 1000 + REPORT_GRACE_MS);
    const outerSeconds = (performance.now() - t0) / 1000;
    const receiverCpu = cpuDelta(cpu0, receiver.cpuSeconds());
    const machineAll = machine.percent();
    sampler.stop();
    const stats = await receiver.stats<ServerStats>();
    await sender.exited();
    const hwm = receiver.memory()?.hwm ?? null;
    await receiver.stop();
    const stored = await dbFingerprint(join(dir, 'receiver.duckdb'));

    const n = done.ackedSeq;
    const seconds = done.window.seconds;
    const bodyBytes = done.batches.reduce((s, b) => s + b.bytes, 0);
    const rawBytes = done.batches.reduce((s, b) => s + b.rawBytes, 0);
    const sizes = done.batches.map((b) => b.bytes);
    const senderSide = side('jsonl sender (child process)', sender.pid, done.window.cpuSeconds, seconds, n, done.window.mainThreadBusyPercent, done.window.vmHwmMB === null ? null : done.window.vmHwmMB * 2 ** 20, Math.max(sampler.peak.get(sender.pid) ?? 0, done.window.peakRssSampledMB * 2 ** 20));
    const receiverSide = side('jsonl receiver (child process)', receiver.pid, receiverCpu, outerSeconds, n, stats.mainThreadBusyPercent, hwm, sampler.peak.get(receiver.pid) ?? null);
    return {
      name: 'jsonl',
      format: 'baseline: JSON lines {seq, ts (epoch ms), device, point, value, unit}, gzip (node zlib, default level), HMAC-signed POST to a minimal node:http receiver that gunzips, JSON.parses and appends to DuckDB',
      complete: done.complete,
      error: done.error,
      readings: n,
      seconds: round(seconds, 3)!,
      readingsPerSec: Math.round(n / seconds),
      wire: {
        bodyBytes,
        bytesPerReading: n ? round(bodyBytes / n, 2) : null,
        socketBytesIn: stats.socketBytes.received,
        socketBytesPerReading: n ? round(stats.socketBytes.received / n, 2) : null,
        uncompressedBytesPerReading: n ? round(rawBytes / n, 2) : null,
      },
      batches: {
        count: done.batches.length,
        meanRows: done.batches.length ? Math.round(n / done.batches.length) : null,
        bodyBytes: {
          mean: sizes.length ? Math.round(bodyBytes / sizes.length) : null,
          min: sizes.length ? Math.min(...sizes) : null,
          max: sizes.length ? Math.max(...sizes) : null,
        },
        prepareMs: ms(done.batches.map((b) => b.prepareMs)),
        uploadMs: ms(done.batches.map((b) => b.uploadMs)),
      },
      sender: senderSide,
      receiver: receiverSide,
      split: { sender: done.split, receiver: stats.split },
      machine: machineShare(machineAll, senderSide, receiverSide),
      verified: {
        ok: done.complete && sameData(stored, backlog.fingerprint),
        checks: { receiverTable: stored, sameAsGatewayStore: sameData(stored, backlog.fingerprint) },
      },
    };
  } finally {
    if (sender) {
      await sender.stop();
      children.delete(sender);
    }
    await receiver.stop();
    children.delete(receiver);
  }
}
