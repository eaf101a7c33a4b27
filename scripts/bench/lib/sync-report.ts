// The sync bench's notes (what each figure includes, how it compares with the aims and
// the baseline, where the time went) and its one-line summary.
import { cpus } from 'node:os';
import { round } from './stats.js';
import type { StageSummary } from './sync-measure.js';
import type { ScenarioResult } from './sync-scenarios.js';
import { AIM_BYTES_PER_READING, AIM_READINGS_PER_SEC, type SyncOptions } from './sync-setup.js';

const rate = (r: number) => (r >= 10_000 ? `${Math.round(r / 1000)}k/s` : `${(r / 1000).toFixed(1)}k/s`);
const pct = (part: number, whole: number) => (whole > 0 ? `${Math.round((100 * part) / whole)}%` : 'n/a');
/** CPU% of other processes during a window above which the figures are flagged as disturbed. */
const OTHER_CPU_WARN = 25;
const sec = (msTotal: number) => `${(msTotal / 1000).toFixed(2)} s`;

/** The stages whose label starts with `prefix`, largest first, as "label 1.23 s (45%)". */
function top(split: Record<string, StageSummary>, windowMs: number, filter: (label: string) => boolean, n = 4): string {
  return Object.entries(split)
    .filter(([label]) => filter(label))
    .slice(0, n)
    .map(([label, s]) => `${label.replace(/^sql: /, '')} ${sec(s.totalMs)} (${pct(s.totalMs, windowMs)})`)
    .join(', ');
}

/** The statements Outbox.next runs to cut a batch. */
const CUT_SQL = ['sql: COPY', 'sql: read back', 'sql: batch bound'];

const total = (split: Record<string, StageSummary>, label: string) => split[label]?.totalMs ?? 0;

export const DEFINITIONS = {
  window:
    'parquet: from Uploader.start() (inside Gateway.start) to the moment the uploader saved the ack of the last seq; gateway start-up (opening the store, the seq scan) is gatewayStartSeconds. jsonl: from the sender opening its first batch to the last ack.',
  readingsPerSec: 'readings acknowledged ÷ window seconds; one batch in flight, the next is cut only after the ack (both scenarios).',
  wire: 'bodyBytes: the batch request bodies (Parquet files; gzip JSON lines), retries included — for parquet the same as outpost_sync_bytes_total. socketBytesIn: all bytes the receiving process read from its sockets in the window (HTTP headers, status reports and command polls included).',
  cpu: 'user+system CPU of the whole process (all threads: DuckDB, zlib/libuv pool) over the window, 100 = one core; gateway and jsonl sender measured inside the child, cloud and receiver from /proc between the sender\'s start and result lines.',
  rss: 'peakRssMB: VmHWM, the high-water mark over the process\'s life (start-up included); peakRssInWindowMB: highest RSS sampled every 100 ms during the drain. Gateway and sender run with --max-old-space-size=256 like `npm start`.',
  split:
    'time by stage, measured by wrapping product methods and every DuckDB statement inside the child (two clock reads per call). Stages nest: a sender\'s "upload" includes all of the receiver\'s work; "sql: …" entries are inside the method stages around them.',
};

export function notes(scenarios: ScenarioResult[], opts: SyncOptions): string[] {
  const out: string[] = [];
  const p = scenarios.find((s) => s.name === 'parquet');
  const j = scenarios.find((s) => s.name === 'jsonl');
  for (const s of scenarios) {
    if (!s.complete) out.push(`${s.name}: INCOMPLETE: ${s.readings} of ${opts.readings} readings acknowledged within --max-seconds ${opts.maxSeconds}${s.error ? ` (last error: ${s.error})` : ''}`);
    if (!s.verified.ok) out.push(`${s.name}: VERIFICATION FAILED: ${JSON.stringify(s.verified.checks)}`);
    const other = s.machine.otherProcessesCpuPercent;
    if (other !== null && other >= OTHER_CPU_WARN) {
      out.push(`${s.name}: other processes used about ${other}% CPU during the window (machine ${s.machine.cpuPercent}% of ${cpus().length * 100}%): the figures are disturbed; rerun on a quiet machine`);
    }
  }
  if (p) {
    const rateOk = p.readingsPerSec >= AIM_READINGS_PER_SEC;
    const bytesOk = p.wire.bytesPerReading !== null && p.wire.bytesPerReading <= AIM_BYTES_PER_READING;
    out.push(
      `parquet: ${p.readingsPerSec} readings/s ${rateOk ? 'meets' : 'misses'} the ≥ ${AIM_READINGS_PER_SEC}/s aim; ` +
        `${p.wire.bytesPerReading} B/reading ${bytesOk ? 'meets' : 'misses'} the ≤ ${AIM_BYTES_PER_READING} B aim (${p.wire.socketBytesPerReading} B with HTTP headers and other calls)`,
    );
    const w = p.seconds * 1000;
    const cut = total(p.split.sender, 'cut a telemetry batch (Outbox.next)');
    const upload = total(p.split.sender, 'upload: signed POST /api/v1/ingest until the ack (cloud ingest included)');
    const ack = total(p.split.sender, 'save the ack mark (Outbox.ack)');
    const ingest = total(p.split.receiver, 'store.ingest (temp file, checks, insert, commit)');
    out.push(
      `parquet: of the ${p.seconds} s window the gateway spent ${sec(cut)} (${pct(cut, w)}) cutting batches ` +
        `[${top(p.split.sender, w, (l) => CUT_SQL.some((c) => l.startsWith(c)), 3)}], ${sec(upload)} (${pct(upload, w)}) in upload round trips and ${sec(ack)} (${pct(ack, w)}) saving acks; ` +
        `the rest (${pct(Math.max(0, w - cut - upload - ack), w)}) is the loop, other streams, status and idle`,
    );
    out.push(
      `parquet: inside the upload round trips the cloud's store.ingest took ${sec(ingest)} (${pct(ingest, upload)} of them): ` +
        `${top(p.split.receiver, ingest, (l) => l.startsWith('sql: ') && !l.includes('other'), 5)} (shares of store.ingest)`,
    );
    const commit = p.split.receiver['sql: COMMIT'];
    if (commit && commit.p50Ms !== null && commit.maxMs !== null && commit.maxMs > 4 * commit.p50Ms) {
      out.push(
        `parquet: the cloud's COMMITs are uneven: p50 ${commit.p50Ms} ms, p90 ${commit.p90Ms} ms, max ${commit.maxMs} ms over ${commit.count} batches; ` +
          "the slow ones are where DuckDB's automatic checkpoint (WAL past checkpoint_threshold, 16 MB by default) runs inside the committing request — batches under one row group (122880 rows) go through the WAL",
      );
    }
    out.push(
      `parquet: gateway ${p.sender.cpuPercent}% CPU (${p.sender.cpuMicrosPerReading} µs/reading, main thread busy ${p.sender.mainThreadBusyPercent}%), ` +
        `cloud ${p.receiver.cpuPercent}% CPU (${p.receiver.cpuMicrosPerReading} µs/reading); one batch in flight, so the two mostly take turns`,
    );
  }
  if (j) {
    const w = j.seconds * 1000;
    out.push(
      `jsonl: ${j.readingsPerSec} readings/s, ${j.wire.bytesPerReading} B/reading gzip (${j.wire.uncompressedBytesPerReading} B/reading as JSON lines); ` +
        `sender: ${top(j.split.sender, w, () => true, 4)}; receiver: ${top(j.split.receiver, w, (l) => !l.startsWith('request') && !l.startsWith('receive'), 5)} (shares of the window)`,
    );
    out.push(
      'jsonl: kept lean on purpose: the sender holds its ack mark in memory (the product saves it in DuckDB after every batch), the receiver has no idempotency keys or per-gateway locks and node:http instead of fastify; both sign/verify HMAC with the product\'s code',
    );
  }
  if (p && j && j.readingsPerSec > 0 && j.wire.bytesPerReading) {
    out.push(
      `parquet vs jsonl: ${round(p.readingsPerSec / j.readingsPerSec, 1)}× the drain rate, ${round(j.wire.bytesPerReading / (p.wire.bytesPerReading ?? NaN), 1)}× fewer wire bytes; ` +
        `gateway-side CPU ${p.sender.cpuMicrosPerReading} vs ${j.sender.cpuMicrosPerReading} µs/reading, receiving side ${p.receiver.cpuMicrosPerReading} vs ${j.receiver.cpuMicrosPerReading} µs/reading`,
    );
  }
  out.push(
    `cloud: a child process running startCloudServer (what \`outpost cloud\` runs), so gateway and cloud CPU/RSS are measured apart; on this machine they share ${cpus().length} cores (in production they are different machines) over loopback (no network latency or bandwidth limit)`,
  );
  return out;
}

export function summaryLine(scenarios: ScenarioResult[]): string {
  const p = scenarios.find((s) => s.name === 'parquet');
  const j = scenarios.find((s) => s.name === 'jsonl');
  const flags = (s: ScenarioResult) => (!s.complete ? ' INCOMPLETE' : '') + (!s.verified.ok ? ' UNVERIFIED' : '');
  const parts: string[] = [];
  if (p) {
    parts.push(
      `parquet ${p.readings} readings drained at ${rate(p.readingsPerSec)}, ${p.wire.bytesPerReading} B/reading ` +
        `(aim ≥${AIM_READINGS_PER_SEC / 1000}k/s, ≤${AIM_BYTES_PER_READING} B)${flags(p)}`,
    );
  }
  if (j) parts.push(`jsonl+gzip ${rate(j.readingsPerSec)}, ${j.wire.bytesPerReading} B/reading${flags(j)}`);
  const main = p ?? j;
  const usage = main
    ? `; ${p ? 'gateway' : 'jsonl sender'} CPU ${main.sender.cpuPercent}%, RSS ${Math.round(main.sender.peakRssMB ?? 0)} MB` +
      `; ${p ? 'cloud' : 'receiver'} CPU ${main.receiver.cpuPercent}%, RSS ${Math.round(main.receiver.peakRssMB ?? 0)} MB`
    : '';
  return `sync: ${parts.join('; ')}${usage}`;
}
