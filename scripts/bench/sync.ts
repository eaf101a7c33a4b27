// Sync bench: how fast the gateway drains a backlog to the cloud, and how many bytes that
// takes, against gzip JSON lines over the same path.
//
//   npm run bench -- sync [--readings 1000000] [--devices 1000] [--points 10] [--batch 50000]
//                         [--only parquet,jsonl] [--max-seconds 120]
//
// The backlog: --readings readings of --devices devices × --points points (temperature,
// humidity, power, voltage, current, CO2, pressure, flow, energy meter, battery; each a
// realistic range, slowly varying sine + small noise, 2 decimals, with its unit), one per
// point per second per device, seq 1…N gap-free in ts order, written straight into the
// gateway's DuckDB file with one INSERT … SELECT FROM range() (lib/sync-setup.ts).
//
//   parquet  the product. A fresh cloud API in a child process (startCloudServer, as
//            `outpost cloud` runs it; lib/sync-cloud.ts); the gateway enrolled with it
//            (one-time token, credentials file) and started in another child process
//            (Gateway.start on a parsed site config: sync on, batchRows = --batch,
//            idleMs 50, MQTT and simulator off, HTTP API on a free loopback port,
//            retention maxAgeDays 36500; lib/sync-gateway.ts). Measured from the
//            uploader's start until it saved the cloud's ack of seq N; then checked: the
//            gateway's backlog is 0, outpost_sync_rows_total = N, the cloud's stream
//            counters say N rows inserted, and the cloud's readings table holds exactly
//            the gateway's N readings (count, distinct seq, min/max, a hash of all columns).
//   jsonl    the baseline, same run: the same N readings read from the same DuckDB file
//            in the same batches (seq order, --batch rows, one in flight), as JSON lines
//            gzip-compressed (node zlib, default level), HMAC-signed, POSTed with undici to
//            a minimal receiver (node:http) that gunzips, parses every line and appends to
//            DuckDB, acknowledging after COMMIT (lib/sync-jsonl-*.ts); same end check.
//
// Each side is its own process, so CPU and RSS are per process: the gateway and the
// sender run with the gateway's 256 MB heap cap. Where the time goes is measured inside
// the children by wrapping product methods (Outbox.next, CloudClient.call, Outbox.ack,
// DuckDbCloudStore.ingest) and timing every DuckDB statement by kind (lib/sync-measure.ts).
// Prints JSON, then one summary line. Temp dirs and children go on exit and on SIGINT.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { guard } from './lib/guard.js';
import { DEFINITIONS, notes, summaryLine } from './lib/sync-report.js';
import type { Children } from './lib/sync-procs.js';
import { runJsonl, runParquet, type ScenarioResult } from './lib/sync-scenarios.js';
import { SCENARIOS, backlogShape, fillBacklog, parseOptions } from './lib/sync-setup.js';
import { round } from './lib/stats.js';

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const wanted = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s));
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-sync-'));
  const dirs = new Set([root]);
  const children: Children = new Set();
  const unguard = guard({ killNow: () => children.forEach((c) => c.killNow()) }, dirs);
  const gwDir = join(root, 'gateway');
  const dbPath = join(gwDir, 'outpost.duckdb');
  const scenarios: ScenarioResult[] = [];
  let backlog;
  try {
    process.stderr.write(`sync: writing a backlog of ${opts.readings} readings (${opts.devices} devices × ${opts.points} points) into the gateway's DuckDB file…\n`);
    backlog = await fillBacklog(dbPath, opts);
    for (const name of wanted) {
      process.stderr.write(`sync: ${name}: draining ${opts.readings} readings in batches of ${opts.batch}…\n`);
      scenarios.push(name === 'parquet' ? await runParquet(opts, root, gwDir, backlog, children) : await runJsonl(opts, root, dbPath, backlog, children));
    }
  } finally {
    for (const c of children) c.killNow();
    unguard();
    rmSync(root, { recursive: true, force: true });
  }
  const result = {
    bench: 'sync',
    options: opts,
    backlog: {
      ...backlogShape(opts, backlog.t0Ms),
      fillSeconds: round(backlog.seconds, 2),
      gatewayStoreBytesPerReading: round(backlog.storeBytes / opts.readings, 2),
    },
    machine: { cpus: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 1), loadavg: loadavg().map((x) => round(x, 2)), node: process.version },
    scenarios,
    definitions: DEFINITIONS,
    notes: notes(scenarios, opts),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(summaryLine(scenarios));
}
