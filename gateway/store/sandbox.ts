// Admin SQL (`POST /api/v1/query`, `outpost query`) in a sandbox. The DuckDB instance
// itself cannot reach the file system (beyond dataDir/tmp) or the network, and its
// configuration is locked (gateway/store/db.ts); on top of that each statement is
// checked before it is bound, so a refusal names what was refused instead of surfacing
// as a permission error:
//  - exactly one statement, and it must be a SELECT (or EXPLAIN of one);
//  - table functions only from a short allow-list (no read_*, glob, query, ...);
//  - tables only the store's own (plus CTEs and the catalog views), so a file path used
//    as a table name (`FROM '/etc/passwd'`) is refused too.
// It then runs on its own connection with a row limit and a time limit: a query that
// runs too long is interrupted, and nothing else waits for it.
import { StatementType, type DuckDBConnection, type Json } from '@duckdb/node-api';
import { QueryError } from '../kernel/query-params.js';

export interface SqlResult {
  columns: string[];
  rows: Json[][];
  truncated: boolean;
}

export interface SandboxLimits {
  maxRows?: number;
  timeoutMs?: number;
}

const DEFAULT_MAX_ROWS = 10_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/** Table functions a query may call: generators and catalog listings, nothing that reads files. */
const ALLOWED_TABLE_FUNCTIONS = new Set(['range', 'generate_series', 'unnest', 'duckdb_tables', 'duckdb_columns', 'duckdb_views']);
/** Catalog schemas a query may read besides the store's own tables. */
const CATALOG_SCHEMAS = new Set(['information_schema', 'pg_catalog']);
const READ_ONLY_TYPES = new Set([StatementType.SELECT, StatementType.EXPLAIN]);

const refused = (why: string) => new QueryError(`refused: ${why}`);

interface AstNode {
  [key: string]: unknown;
}

const isNode = (v: unknown): v is AstNode => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Every table reference and table function in a parsed statement, and the CTE names it defines. */
function collect(ast: unknown): { tables: { schema: string; name: string; catalog: string }[]; functions: string[]; ctes: Set<string> } {
  const tables: { schema: string; name: string; catalog: string }[] = [];
  const functions: string[] = [];
  const ctes = new Set<string>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!isNode(n)) return;
    if (n.type === 'BASE_TABLE') {
      tables.push({ name: text(n.table_name), schema: text(n.schema_name), catalog: text(n.catalog_name) });
    } else if (n.type === 'TABLE_FUNCTION' && isNode(n.function)) {
      functions.push(text(n.function.function_name).toLowerCase());
    }
    const map = isNode(n.cte_map) ? n.cte_map.map : undefined;
    if (Array.isArray(map)) for (const e of map) if (isNode(e) && typeof e.key === 'string') ctes.add(e.key.toLowerCase());
    for (const v of Object.values(n)) if (typeof v === 'object') walk(v);
  };
  walk(ast);
  return { tables, functions, ctes };
}

async function storeTables(conn: DuckDBConnection): Promise<{ catalog: string; tables: Set<string> }> {
  const rows = (
    await conn.runAndReadAll(
      `SELECT table_name, current_database() FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database()
       UNION SELECT view_name, current_database() FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal AND database_name = current_database()`,
    )
  ).getRows();
  return { catalog: String(rows[0]?.[1] ?? '').toLowerCase(), tables: new Set(rows.map((r) => String(r[0]).toLowerCase())) };
}

/** The first keyword, past comments and whitespace: names the kind of a refused statement. */
function leadingKeyword(sql: string): string {
  const stripped = sql.replace(/^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/, '');
  return (/^[A-Za-z]+/.exec(stripped)?.[0] ?? 'unknown').toUpperCase();
}

/** Parses without binding; null when DuckDB will not serialise it (not a plain SELECT). */
async function parseSelect(conn: DuckDBConnection, sql: string): Promise<unknown> {
  const r = await conn.runAndReadAll('SELECT json_serialize_sql($1::VARCHAR)', [sql]);
  const doc = JSON.parse(String(r.getRows()[0][0])) as { error?: boolean; statements?: unknown[] };
  return doc.error ? null : doc;
}

/** Refuses what a read-only query may not touch; throws QueryError naming it. */
async function checkSelect(conn: DuckDBConnection, ast: unknown): Promise<void> {
  const { tables, functions, ctes } = collect(ast);
  for (const f of functions) {
    if (!ALLOWED_TABLE_FUNCTIONS.has(f)) {
      throw refused(
        `table function ${f}() is not allowed: queries read only the store's tables (allowed functions: ${[...ALLOWED_TABLE_FUNCTIONS].join(', ')})`,
      );
    }
  }
  if (tables.length === 0) return;
  const own = await storeTables(conn);
  for (const t of tables) {
    const catalog = t.catalog.toLowerCase();
    const schema = t.schema.toLowerCase();
    const name = t.name.toLowerCase();
    const ownCatalog = catalog === '' || catalog === own.catalog;
    if (ownCatalog && CATALOG_SCHEMAS.has(schema)) continue;
    const inMain = ownCatalog && (schema === '' || schema === 'main');
    if (inMain && catalog === '' && schema === '' && ctes.has(name)) continue;
    if (inMain && own.tables.has(name)) continue;
    throw refused(
      `"${[t.catalog, t.schema, t.name].filter(Boolean).join('.')}" is not a table of the store (tables: ${[...own.tables].sort().join(', ')}); files and other databases cannot be read`,
    );
  }
}

/**
 * Checks `sql` as described at the top of this file, then runs it with the limits.
 * `conn` should be a connection of its own: a timeout interrupts whatever it runs.
 */
export async function readOnlySql(
  conn: DuckDBConnection,
  sql: string,
  maxRows = DEFAULT_MAX_ROWS,
  limits: SandboxLimits = {},
): Promise<SqlResult> {
  let extracted;
  try {
    extracted = await conn.extractStatements(sql);
  } catch (err) {
    throw new QueryError(`SQL error: ${(err as Error).message}`);
  }
  if (extracted.count !== 1) throw new QueryError(`expected exactly one SQL statement, got ${extracted.count}`);
  let body = sql;
  const explain = /^(\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*EXPLAIN(\s+ANALYZE)?\b/i.exec(sql);
  if (explain) body = sql.slice(explain[0].length);
  const ast = await parseSelect(conn, body);
  if (ast === null) {
    const kind = leadingKeyword(body);
    if (kind === 'SET' || kind === 'RESET') throw refused(`settings are locked; this is a ${kind} statement`);
    throw new QueryError(
      `refused: outpost query is read-only (SELECT or EXPLAIN), this is a ${explain ? 'EXPLAIN of a ' : ''}${kind} statement`,
    );
  }
  await checkSelect(conn, ast);
  let stmt;
  try {
    stmt = await extracted.prepare(0);
  } catch (err) {
    throw new QueryError(`SQL error: ${(err as Error).message}`);
  }
  if (!READ_ONLY_TYPES.has(stmt.statementType)) {
    throw new QueryError(
      `refused: outpost query is read-only (SELECT or EXPLAIN), this is a ${StatementType[stmt.statementType] ?? 'unknown'} statement`,
    );
  }
  const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.interrupt();
  }, timeoutMs);
  try {
    const reader = await stmt.runAndReadUntil(maxRows + 1);
    const rows = reader.getRowsJson();
    return { columns: reader.columnNames(), rows: rows.slice(0, maxRows), truncated: rows.length > maxRows };
  } catch (err) {
    if (timedOut) throw new QueryError(`interrupted: the query ran longer than ${timeoutMs} ms (http.query.timeoutMs)`);
    throw new QueryError(`SQL error: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
