// Child process of the sync bench: the real gateway (Gateway.start on a parsed site
// config, sync enabled) draining a prepared backlog to the cloud with the product's
// uploader. Run as
//
//   node --max-old-space-size=256 sync-gateway.js <site.yaml> <lastSeq> <maxSeconds>
//
// and prints on stdout:
//   started {…}   Gateway.start returned (the uploader started inside it)
//   drained {…}   the cloud acknowledged seq <lastSeq> (or maxSeconds passed): figures
//   error <why>   it could not start
// then stops the gateway and exits. Logs (warn and up) go to stderr.
//
// The window runs from Uploader.start() to the moment the uploader's ack of the last seq
// is saved. Inside it, the time of the uploader's steps is taken by wrapping product
// methods on their prototypes (Outbox.next: cutting a batch — bound query, COPY … TO
// parquet, read-back, file read; CloudClient.call: the signed HTTP round trip, which
// includes the cloud's whole ingest; Outbox.ack: saving the mark) and every DuckDB
// statement by kind.
import { pino } from 'pino';
import { loadConfigFile } from '../../../config/site.js';
import { Gateway } from '../../../gateway/gateway.js';
import { CloudClient } from '../../../sync/client.js';
import { Outbox, type Batch } from '../../../sync/outbox.js';
import { Uploader } from '../../../sync/uploader.js';
import { ProcessWindow, Stages, runMain, say, timeDuckDb, wrapAsync } from './sync-measure.js';
import { SAMPLE_EVERY_MS } from './sync-setup.js';

interface BatchRecord {
  first: number;
  last: number;
  rows: number;
  bytes: number;
  cutMs: number;
  uploadMs?: number;
}

function classifySql(sql: string): string | null {
  const s = sql.trimStart();
  if (s.startsWith('COPY (SELECT')) return 'sql: COPY … TO parquet (zstd)';
  if (s.includes('read_parquet(')) return 'sql: read back min/max/count from the file';
  if (s.startsWith('SELECT max(seq)')) return 'sql: batch bound (top-N seq)';
  if (s.startsWith('INSERT INTO meta VALUES')) return 'sql: save acked mark';
  if (s.startsWith('INSERT INTO meta SELECT') || s.startsWith('DELETE FROM') || s.startsWith('CHECKPOINT')) return 'sql: retention pass (runs once at start-up)';
  if (s.includes('pragma_database_size') || s.includes('epoch_ms(min(')) return 'sql: backlog status / store size';
  if (s.startsWith("SELECT key, value FROM meta WHERE key LIKE 'sync_%'")) return 'sql: read marks';
  return 'sql: other (writer, API, retention counts)';
}

async function main(): Promise<void> {
  const [configPath, lastSeqRaw, maxSecondsRaw] = process.argv.slice(2);
  const lastSeq = Number(lastSeqRaw);
  const maxSeconds = Number(maxSecondsRaw);
  if (!configPath || !Number.isSafeInteger(lastSeq) || !(maxSeconds > 0)) throw new Error('usage: sync-gateway.js <site.yaml> <lastSeq> <maxSeconds>');

  const stages = new Stages();
  const window = new ProcessWindow();
  const batches: BatchRecord[] = [];
  const otherBodies = { calls: 0, bytes: 0 };
  let drainedAt: number | null = null;
  let ackedSeq = 0;
  let onDrained: () => void = () => undefined;
  const drained = new Promise<void>((r) => (onDrained = r));

  timeDuckDb(stages, classifySql);
  // The window starts with the uploader; what ran before (opening the store, the writer's
  // seq scan, rules) is start-up, reported apart.
  const originalStart = Uploader.prototype.start;
  Uploader.prototype.start = function (this: Uploader) {
    stages.reset();
    window.start(SAMPLE_EVERY_MS);
    originalStart.call(this);
  };
  wrapAsync(Outbox.prototype, 'next', (ms, args, result) => {
    const stream = args[0] as string;
    const b = result as Batch | null | undefined;
    stages.add(stream === 'telemetry' ? (b ? 'cut a telemetry batch (Outbox.next)' : 'look for more telemetry (none)') : `look for ${stream} rows`, ms);
    if (b && stream === 'telemetry') batches.push({ first: b.first, last: b.last, rows: b.rows, bytes: b.body.length, cutMs: ms });
  });
  wrapAsync(CloudClient.prototype, 'call', (ms, args) => {
    const [method, path, opts] = args as [string, string, { body?: Buffer | string } | undefined];
    if (path === '/api/v1/ingest') {
      stages.add('upload: signed POST /api/v1/ingest until the ack (cloud ingest included)', ms);
      const last = batches[batches.length - 1];
      if (last && last.uploadMs === undefined) last.uploadMs = ms;
    } else {
      stages.add(`call: ${method} ${path}`, ms);
      otherBodies.calls++;
      otherBodies.bytes += opts?.body === undefined ? 0 : Buffer.byteLength(opts.body);
    }
  });
  wrapAsync(Outbox.prototype, 'ack', (ms, args) => {
    stages.add('save the ack mark (Outbox.ack)', ms);
    const [stream, seq] = args as [string, number];
    if (stream !== 'telemetry') return;
    ackedSeq = Math.max(ackedSeq, seq);
    if (seq >= lastSeq && drainedAt === null) {
      drainedAt = performance.now();
      onDrained();
    }
  });

  const config = loadConfigFile(configPath);
  const log = pino({ name: 'outpost', level: 'warn' }, pino.destination(2));
  const t0 = performance.now();
  const gw = await Gateway.start({ config, log });
  const startSeconds = (performance.now() - t0) / 1000;
  if (!gw.sync) throw new Error('sync is not enabled in the site config');
  say('started', { pid: process.pid, startSeconds });

  const deadline = setTimeout(onDrained, maxSeconds * 1000);
  await drained;
  clearTimeout(deadline);
  const figures = window.close(drainedAt ?? performance.now());
  const split = stages.snapshot();
  const status = await gw.sync.status();
  const sum = async (c: { get(): Promise<{ values: { value: number }[] }> }) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
  const metrics = {
    syncRowsTotal: await sum(gw.metrics.sync.syncRows),
    syncBytesTotal: await sum(gw.metrics.sync.syncBytes),
    syncBatchesTotal: await sum(gw.metrics.sync.syncBatches),
  };
  say('drained', {
    complete: drainedAt !== null,
    startSeconds,
    ackedSeq,
    window: figures,
    batches,
    otherBodies,
    split,
    status: { telemetry: status.streams.telemetry, lastError: status.lastError, consecutiveFailures: status.consecutiveFailures },
    metrics,
  });
  await gw.stop('bench done');
}

runMain(main, true);
