// The admin SQL endpoint cannot read files, reach the network, change settings or run
// more than one statement; a query that runs too long is interrupted without holding up
// the daemon; every query, refused or not, is audited.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { api, removeDir, startGateway } from './helpers/gateway.js';

interface QueryAnswer {
  columns?: string[];
  rows?: unknown[][];
  error?: string;
}

t.test('escape routes are refused with a clear message; the store tables are readable', async (t) => {
  const g = await startGateway({ http: { query: { timeoutMs: 400, maxRows: 5 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  // A file inside the one directory DuckDB may still use (sync batches): the statement
  // check must refuse it even though the instance would allow it.
  mkdirSync(join(g.dir, 'tmp'), { recursive: true });
  writeFileSync(join(g.dir, 'tmp', 'inside.csv'), 'a\n1\n');
  const q = (sql: string) => api<QueryAnswer>(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql } });

  const escapes: [string, RegExp][] = [
    ["SELECT content FROM read_text('/etc/hostname')", /refused: table function read_text\(\) is not allowed/],
    ["SELECT * FROM read_csv('/etc/passwd')", /refused: table function read_csv\(\) is not allowed/],
    [`SELECT * FROM read_csv('${join(g.dir, 'tmp', 'inside.csv')}')`, /refused: table function read_csv\(\) is not allowed/],
    ["SELECT * FROM read_parquet('/tmp/*.parquet')", /refused: table function read_parquet\(\) is not allowed/],
    ["SELECT * FROM glob('/etc/*')", /refused: table function glob\(\) is not allowed/],
    ["SELECT * FROM read_blob('/etc/hostname')", /refused: table function read_blob\(\) is not allowed/],
    ["SELECT * FROM query('SELECT 1')", /refused: table function query\(\) is not allowed/],
    ["SELECT * FROM '/etc/passwd'", /refused: "\/etc\/passwd" is not a table of the store/],
    ["SELECT * FROM 'data.csv'", /refused: "data\.csv" is not a table of the store/],
    ["SELECT * FROM readings WHERE seq IN (SELECT 1 FROM read_text('/etc/hostname'))", /refused: table function read_text\(\)/],
    ["WITH f AS (SELECT * FROM read_text('/etc/hostname')) SELECT * FROM f", /refused: table function read_text\(\)/],
    ["ATTACH '/tmp/other.duckdb' AS other", /read-only \(SELECT or EXPLAIN\), this is a ATTACH statement/],
    ['SELECT * FROM other.main.readings', /refused: "other\.main\.readings" is not a table of the store/],
    ["COPY readings TO '/tmp/stolen.csv'", /read-only \(SELECT or EXPLAIN\), this is a COPY statement/],
    ["COPY (SELECT * FROM readings) TO '/tmp/stolen.parquet' (FORMAT parquet)", /this is a COPY statement/],
    ['SET enable_external_access = true', /refused: settings are locked; this is a SET statement/],
    ['RESET enable_external_access', /refused: settings are locked; this is a RESET statement/],
    ["PRAGMA table_info('readings')", /this is a PRAGMA statement/],
    ['INSTALL httpfs', /this is a INSTALL statement/],
    ['LOAD httpfs', /this is a LOAD statement/],
    ["CALL pragma_table_info('readings')", /this is a CALL statement/],
    ['SELECT 1; SELECT 2', /exactly one SQL statement, got 2/],
    ['SELECT 1 /* a comment */; DROP TABLE readings', /exactly one SQL statement, got 2/],
    ['SELECT 1; -- hidden\nDELETE FROM readings', /exactly one SQL statement, got 2/],
    ['/* lead */ DELETE FROM readings', /this is a DELETE statement/],
    ["EXPLAIN COPY readings TO '/tmp/x.csv'", /this is a EXPLAIN of a COPY statement/],
    ["EXPLAIN SELECT * FROM read_text('/etc/hostname')", /table function read_text\(\)/],
  ];
  for (const [sql, message] of escapes) {
    const r = await q(sql);
    t.equal(r.status, 400, `refused: ${sql}`);
    t.match(r.body.error, message, `with a clear message: ${sql}`);
  }

  const ok = await q("SELECT count(*)::INT AS n FROM readings WHERE device = 'none'");
  t.same(ok.body, { columns: ['n'], rows: [[0]], truncated: false }, 'a plain SELECT on the store works');
  const cte = await q('WITH r AS (SELECT * FROM range(3)) SELECT count(*)::INT FROM r, events LIMIT 1');
  t.equal(cte.status, 200, 'CTEs, range() and the store tables are allowed');
  const catalog = await q("SELECT table_name FROM information_schema.tables WHERE table_name = 'readings'");
  t.same(catalog.body.rows, [['readings']], 'the catalog views are allowed');
  const limited = await q('SELECT * FROM range(100)');
  t.equal(limited.body.rows?.length, 5, 'http.query.maxRows caps the rows');
  const explain = await q('EXPLAIN SELECT * FROM readings');
  t.equal(explain.status, 200, 'EXPLAIN of a SELECT is allowed');

  // The instance itself is locked down too: even a connection that skips the checks
  // cannot read files or turn external access back on.
  const raw = await g.gw.db.instance.connect();
  try {
    await t.rejects(raw.run("SELECT * FROM read_text('/etc/hostname')"), {
      message: /file system operations are disabled by configuration/,
    });
    await t.rejects(raw.run('SET enable_external_access = true'), {
      message: /Cannot enable external access|configuration has been locked/,
    });
    await t.rejects(raw.run("SET memory_limit = '8GB'"), { message: /configuration has been locked/ });
    await t.rejects(raw.run("ATTACH '/tmp/x-outpost.duckdb' AS x"), { message: /disabled by configuration/ });
  } finally {
    raw.closeSync();
  }
});

t.test('a query that runs too long is interrupted; the daemon keeps answering meanwhile', async (t) => {
  const g = await startGateway({ http: { query: { timeoutMs: 600 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const started = Date.now();
  const slow = api<QueryAnswer>(g.httpUrl, '/api/v1/query', g.adminToken, {
    method: 'POST',
    body: { sql: 'SELECT count(*) FROM range(1000000000000) a' },
  });
  // While it runs, health answers (DuckDB runs the query off the event loop).
  const health = await api<{ status: string }>(g.httpUrl, '/health');
  t.equal(health.body.status, 'ok');
  t.ok(Date.now() - started < 600, 'health answered before the query was interrupted');
  const r = await slow;
  t.equal(r.status, 400);
  t.match(r.body.error, /interrupted: the query ran longer than 600 ms \(http\.query\.timeoutMs\)/);
  const after = await api<QueryAnswer>(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql: 'SELECT 42 AS answer' } });
  t.same(after.body.rows, [[42]], 'the next query runs normally');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_sql_queries_total\{outcome="timeout"\} 1/);
  t.match(metrics, /outpost_sql_queries_total\{outcome="ok"\} 1/);
});

t.test('more concurrent queries than http.query.maxConcurrent get 429', async (t) => {
  const g = await startGateway({ http: { query: { timeoutMs: 800, maxConcurrent: 1 } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const slow = api<QueryAnswer>(g.httpUrl, '/api/v1/query', g.adminToken, {
    method: 'POST',
    body: { sql: 'SELECT count(*) FROM range(1000000000000) a' },
  });
  await new Promise((r) => setTimeout(r, 100));
  const busy = await api<QueryAnswer>(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql: 'SELECT 1' } });
  t.equal(busy.status, 429);
  t.match(busy.body.error, /1 queries are running \(http\.query\.maxConcurrent\)/);
  t.equal((await slow).status, 400);
});

t.test('every admin query is audited: who, when, the SQL, rows, outcome', async (t) => {
  const g = await startGateway();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const run = (sql: string) => api(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql } });
  await run('SELECT * FROM range(3)');
  await run("SELECT * FROM read_text('/etc/hostname')");
  await run('SELEC 1');
  const events = await api<{ events: { type: string; time: string; data: Record<string, unknown> }[] }>(
    g.httpUrl,
    '/api/v1/events?type=audit.query',
    g.adminToken,
  );
  const audit = events.body.events.reverse();
  t.equal(audit.length, 3);
  t.match(audit[0], {
    type: 'audit.query',
    data: {
      by: 'generated-admin',
      role: 'admin',
      via: 'api',
      remote: '127.0.0.1',
      sql: 'SELECT * FROM range(3)',
      rows: 3,
      truncated: false,
      outcome: 'ok',
    },
  });
  t.match(audit[1], { data: { sql: "SELECT * FROM read_text('/etc/hostname')", rows: 0, outcome: 'refused', error: /read_text/ } });
  t.match(audit[2], { data: { sql: 'SELEC 1', outcome: 'error', error: /SQL error/ } });
  t.ok(
    audit.every((e) => Math.abs(Date.parse(e.time) - Date.now()) < 60_000),
    'each with its time',
  );
  t.ok(audit.every((e) => typeof e.data.durationMs === 'number'));
});
