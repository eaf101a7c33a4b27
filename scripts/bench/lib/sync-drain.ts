// The sync bench's two scenarios, run from the bench process (lib/sync-child.ts runs the sides):
//   parquet  the product: a fresh cloud API, the gateway enrolled with it, draining the backlog
//            with its uploader (zstd Parquet batches, one in flight)
//   jsonl    the baseline: the same readings from the same DuckDB file, same batch size, as
//            gzip JSON lines from a sender to a minimal receiver
// A sender measures itself (its `drained`/`done` line); the server's CPU comes from /proc
// between the sender's `started` line and its result, its main-thread share from itself.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Agent } from 'undici';
import { stringify } from 'yaml';
import { enroll, writeCredentials } from '../../../sync/credentials.js';
import { Child, Guard, LOOPBACK, libScript } from './procs.js';
import { MachineCpu } from './sampling.js';
import { mb, round, sum, summarize } from './stats.js';
import { benchSite } from './site.js';
import { GATEWAY_ID, SITE, fingerprint, type BacklogInfo } from './sync-setup.js';

export type Run = { opts: { readings: number; batch: number; maxSeconds: number }; root: string; backlog: BacklogInfo; guard: Guard };

/** What both senders report at the end; batches carry body bytes, rows and the sender's own per-batch times. */
interface SenderReport {
  complete: boolean;
  ackedSeq: number;
  window: { seconds: number; cpuSeconds: number; mainThreadBusyPercent: number; vmHwmMB: number | null };
  batches: Array<{ rows: number; bytes: number; rawBytes?: number; prepareMs?: number; cutMs?: number; uploadMs?: number }>;
}

// One drain, the server already up: the sender started and measured to its result, the server's
// stats, then the server stopped (its DuckDB file closed) and the table it holds compared with
// the gateway's store.
async function drain<T extends SenderReport>(run: Run, server: Child, sender: string[], roles: string[], db: string) {
  const child = new Child(roles[0], ['--max-old-space-size=256', libScript('sync-child'), ...sender]);
  run.guard.children.add(child);
  try {
    await child.waitFor('started', 30_000);
    await server.ask('mark');
    const [t0, machine, cpu0] = [performance.now(), new MachineCpu(), server.cpuSeconds()];
    const report = JSON.parse(await child.waitFor(sender[0] === 'gateway' ? 'drained' : 'done', run.opts.maxSeconds * 1000 + 60_000)) as T;
    const [seconds, cpu1, all] = [(performance.now() - t0) / 1000, server.cpuSeconds(), machine.percent()];
    const stats = JSON.parse(await server.ask('stats')) as { mainThreadBusyPercent: number };
    await child.exited();
    const hwm = server.memory()?.hwm ?? null;
    await server.stop(30_000);
    const { window: w, ackedSeq: n } = report;
    // One process: CPU over the window (100 = one core) and per reading, main-thread busy share, RSS high-water mark.
    const side = (role: string, pid: number, cpu: number | null, s: number, busy: number, hwm: number | null) => ({
      role,
      pid,
      cpuPercent: cpu === null ? null : round((100 * cpu) / s, 0),
      cpuMicrosPerReading: cpu === null || n === 0 ? null : round((cpu * 1e6) / n, 2),
      mainThreadBusyPercent: busy,
      peakRssMB: mb(hwm),
    });
    const hwmSender = w.vmHwmMB === null ? null : w.vmHwmMB * 2 ** 20;
    const s = side(roles[0], child.pid, w.cpuSeconds, w.seconds, w.mainThreadBusyPercent, hwmSender);
    const serverCpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
    const r = side(roles[1], server.pid, serverCpu, seconds, stats.mainThreadBusyPercent, hwm);
    const stored = await dbFingerprint(db);
    const same = (['rows', 'distinctSeq', 'minSeq', 'maxSeq', 'hash'] as const).every((k) => stored[k] === run.backlog.fingerprint[k]);
    // machine: all CPUs over the window (100 = one core), and what neither side used (this bench, anything else).
    const others = all === null ? null : Math.max(0, Math.round(all - (s.cpuPercent ?? 0) - (r.cpuPercent ?? 0)));
    const sides = { sender: s, receiver: r, machine: { cpuPercent: all, otherProcessesCpuPercent: others } };
    return { report, sides, figures: figures(report, sides), stored, same };
  } finally {
    await child.stop();
  }
}

async function dbFingerprint(path: string) {
  const inst = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const c = await inst.connect();
  try {
    return await fingerprint(c);
  } finally {
    c.closeSync();
    inst.closeSync();
  }
}

/** A scenario's figures: rate, wire bytes (the batch bodies) and batches. */
function figures<S extends object>(report: SenderReport, sides: S) {
  const n = report.ackedSeq;
  const b = report.batches;
  const sizes = b.map((x) => x.bytes);
  const bodyBytes = sum(sizes);
  const perReading = (bytes: number) => (n ? round(bytes / n, 2) : null);
  const times = (xs: number[]) => ({ p50: summarize(xs, 1).p50, max: summarize(xs, 1).max, totalMs: round(sum(xs), 0) });
  const raw = b.every((x) => x.rawBytes !== undefined)
    ? { uncompressedBytesPerReading: perReading(sum(b.map((x) => x.rawBytes ?? 0))) }
    : {};
  return {
    complete: report.complete,
    readings: n,
    seconds: round(report.window.seconds, 3)!,
    readingsPerSec: Math.round(n / report.window.seconds),
    wire: { bodyBytes, bytesPerReading: perReading(bodyBytes), ...raw },
    // prepareMs: making one batch (parquet: Outbox.next; jsonl: read rows + JSON lines + gzip); uploadMs: the signed POST until the ack.
    batches: {
      count: b.length,
      meanRows: b.length ? Math.round(sum(b.map((x) => x.rows)) / b.length) : null,
      bodyBytes: { mean: b.length ? Math.round(bodyBytes / b.length) : null, min: Math.min(...sizes), max: Math.max(...sizes) },
      prepareMs: times(b.map((x) => x.prepareMs ?? x.cutMs ?? 0)),
      uploadMs: times(b.flatMap((x) => x.uploadMs ?? [])),
    },
    ...sides,
  };
}
export type ScenarioResult = { name: string; format: string; error: string | null } & ReturnType<
  typeof figures<Awaited<ReturnType<typeof drain>>['sides']>
> & {
    verified: { ok: boolean; checks: Record<string, unknown> };
  };

/** Starts a server child, runs `body` with it and its `ready` line, stops it whatever happens. */
async function withServer<R>(run: Run, label: string, args: string[], body: (server: Child, ready: string) => Promise<R>): Promise<R> {
  const server = new Child(label, [libScript('sync-child'), ...args]);
  run.guard.children.add(server);
  try {
    return await body(server, await server.waitFor('ready', 30_000));
  } finally {
    await server.stop(30_000);
  }
}

/** The gateway's site config: sync on; a long age limit keeps retention away from the backlog's recent timestamps. */
const siteConfig = (dataDir: string, url: string, batchRows: number): Record<string, unknown> =>
  benchSite(dataDir, {
    log: { level: 'warn' },
    store: { retention: { maxAgeDays: 36_500, checkIntervalS: 86_400 } },
    sync: { enabled: true, url, batchRows, idleMs: 50 },
  });

/** The cloud API's config: loopback on a free port, its defaults otherwise (it has no rate limits to lift). */
const cloudConfig = (dataDir: string): Record<string, unknown> => ({
  dataDir,
  log: { level: 'warn' },
  http: { host: LOOPBACK, port: 0 },
});

interface GatewayDrained extends SenderReport {
  startSeconds: number;
  status: { backlogRows: number; lastError: string | null; syncRowsTotal: number };
}

export async function runParquet(run: Run, gwDir: string): Promise<ScenarioResult> {
  const dir = join(run.root, 'cloud');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cloud.yaml'), stringify(cloudConfig(dir)));
  return withServer(run, 'cloud API', ['cloud', join(dir, 'cloud.yaml')], async (cloud, ready) => {
    const [url, tokenFile] = ready.split(' ');
    // Enrolled as an installer does it: a one-time token from the cloud, then the credentials file.
    const headers = { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ site: SITE, gatewayId: GATEWAY_ID });
    const res = await fetch(`${url}/api/v1/enrollment-tokens`, { method: 'POST', headers, body });
    const { token } = (await res.json()) as { token?: string };
    if (res.status !== 201 || !token) throw new Error(`minting an enrollment token: HTTP ${res.status}`);
    const agent = new Agent();
    const credentials = await enroll(agent, url, { token, gatewayId: GATEWAY_ID, site: SITE }).finally(() => agent.close());
    writeCredentials(join(gwDir, 'cloud-credentials.json'), credentials);
    writeFileSync(join(run.root, 'site.yaml'), stringify(siteConfig(gwDir, url, run.opts.batch)));
    const args = ['gateway', join(run.root, 'site.yaml'), String(run.opts.readings), String(run.opts.maxSeconds)];
    const roles = ['gateway (child process, Gateway.start)', 'cloud API (child process, startCloudServer)'];
    const d = await drain<GatewayDrained>(run, cloud, args, roles, join(dir, 'cloud.duckdb'));
    const { backlogRows, lastError, syncRowsTotal } = d.report.status;
    const ok = d.report.complete && backlogRows === 0 && syncRowsTotal === run.opts.readings && d.same;
    const checks = {
      gatewayBacklogRows: backlogRows,
      gatewaySyncRowsTotal: syncRowsTotal,
      cloudTable: d.stored,
      sameAsGatewayStore: d.same,
    };
    const format =
      'the product: zstd Parquet batches cut by DuckDB (COPY … TO), HMAC-signed POST /api/v1/ingest, the cloud inserts with read_parquet';
    return {
      name: 'parquet',
      format,
      error: lastError,
      ...d.figures,
      verified: { ok, checks },
      gatewayStartSeconds: round(d.report.startSeconds, 3),
    };
  });
}

export async function runJsonl(run: Run, dbPath: string): Promise<ScenarioResult> {
  const dir = join(run.root, 'receiver');
  mkdirSync(dir, { recursive: true });
  return withServer(run, 'jsonl receiver', ['receiver', dir], async (receiver, port) => {
    const { batch, readings, maxSeconds } = run.opts;
    const args = ['sender', dbPath, `http://127.0.0.1:${port}`, String(batch), String(readings), String(maxSeconds)];
    const roles = ['jsonl sender (child process)', 'jsonl receiver (child process)'];
    const d = await drain<SenderReport & { error: string | null }>(run, receiver, args, roles, join(dir, 'receiver.duckdb'));
    const format =
      'baseline: JSON lines {seq, ts, device, point, value, unit}, gzip, HMAC-signed POST to a minimal node:http receiver appending to DuckDB';
    const checks = { receiverTable: d.stored, sameAsGatewayStore: d.same };
    return { name: 'jsonl', format, error: d.report.error, ...d.figures, verified: { ok: d.report.complete && d.same, checks } };
  });
}
