// Child process of the sync bench: the cloud API as `outpost cloud --config F` runs it
// (loadCloudConfigFile + startCloudServer, stopped with close() on SIGTERM), plus timing.
// Run as `node sync-cloud.js <cloud.yaml>`; prints `ready <url> <admin token file>` once it
// listens. stdin commands: `reset` (start a measuring window; answers `reset`), `mark` (the
// drain starts: main-thread busy share from here; answers `mark`) and `stats`
// (answers `stats {…}`: time per request, per store.ingest, per DuckDB statement kind, and
// the bytes its sockets received — HTTP headers included — since the reset).
import { pino } from 'pino';
import { loadCloudConfigFile } from '../../../sync/cloud/config.js';
import { DuckDbCloudStore } from '../../../sync/cloud/duckdb-store.js';
import { startCloudServer } from '../../../sync/cloud/server.js';
import { Stages, answerCommands, exitOnSignal, runMain, say, timeDuckDb, wrapAsync } from './sync-measure.js';

function classifySql(sql: string): string | null {
  const s = sql.trimStart();
  if (s.startsWith('INSERT INTO readings')) return 'sql: INSERT … SELECT FROM read_parquet';
  if (s.startsWith('SELECT * FROM read_parquet') && s.includes('LIMIT 0')) return 'sql: check the file columns';
  if (s.includes('count(DISTINCT seq)')) return 'sql: check rows/min/max/distinct seq';
  if (s.startsWith('COMMIT')) return 'sql: COMMIT';
  if (s.startsWith('BEGIN')) return 'sql: BEGIN';
  if (s.startsWith('INSERT INTO streams')) return 'sql: advance the stream mark';
  if (s.startsWith('SELECT acked_seq')) return 'sql: read the stream mark';
  if (s.startsWith('SELECT id, site, secret FROM gateways')) return 'sql: gateway credentials (auth)';
  return 'sql: other (status, commands, enrollment)';
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: sync-cloud.js <cloud.yaml>');
  const stages = new Stages();
  timeDuckDb(stages, classifySql);
  wrapAsync(DuckDbCloudStore.prototype, 'ingest', (ms) => stages.add('store.ingest (temp file, checks, insert, commit)', ms));

  const config = loadCloudConfigFile(configPath);
  const log = pino({ name: 'outpost-cloud', level: config.log.level }, pino.destination(2));
  const server = await startCloudServer(config, log);

  server.app.server.on('request', (req: { url?: string }, res: { once(e: 'finish', f: () => void): void }) => {
    const t = performance.now();
    const label = req.url?.startsWith('/api/v1/ingest') ? 'request: POST /api/v1/ingest (body in → reply sent)' : `request: ${req.url?.split('?')[0] ?? '?'}`;
    res.once('finish', () => stages.add(label, performance.now() - t));
  });
  // reset / mark / stats on stdin; stats count the bytes in and out on every socket.
  answerCommands(stages, server.app.server, true);
  exitOnSignal(() => server.close());
  say(`ready ${server.url} ${server.adminTokenFile ?? ''}`);
}

runMain(main, false);
