// `outpost query "SQL"`: read-only SQL on the local store. DuckDB lets only one process
// open the file for writing, so while the daemon runs the query goes through its API
// (admin token); when it is not running the file is opened read-only here.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import { openDatabase } from '../store/db.js';
import { ApiUnreachable, apiCall, apiTarget } from './client.js';
import { readOnlySql, type SqlResult } from '../store/sandbox.js';

export interface QueryOptions {
  format: 'table' | 'json' | 'csv';
  maxRows: number;
  url?: string;
  token?: string;
}

export async function runQuery(config: SiteConfig, sql: string, opts: QueryOptions): Promise<string> {
  const target = apiTarget(config, opts);
  let result: SqlResult;
  try {
    result = await apiCall<SqlResult>(target, '/api/v1/query', { method: 'POST', body: { sql, maxRows: opts.maxRows } });
  } catch (err) {
    if (!(err instanceof ApiUnreachable)) throw err;
    result = await queryFile(resolve(config.dataDir, config.store.file), sql, opts.maxRows);
  }
  return formatResult(result, opts.format);
}

async function queryFile(path: string, sql: string, maxRows: number): Promise<SqlResult> {
  if (!existsSync(path)) throw new Error(`no gateway running and no store at ${path} (has the gateway run with this config?)`);
  const db = await openDatabase(path, { readOnly: true, allowedDirs: [] }).catch((err: Error) => {
    throw new Error(`cannot open ${path} read-only: ${err.message}`);
  });
  try {
    return await readOnlySql(db.reader, sql, maxRows);
  } finally {
    db.close();
  }
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

function formatResult(r: SqlResult, format: QueryOptions['format']): string {
  if (format === 'json') {
    return JSON.stringify(
      r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i]]))),
      null,
      2,
    );
  }
  if (format === 'csv') {
    const esc = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    return [r.columns, ...r.rows.map((row) => row.map(cell))].map((line) => line.map(esc).join(',')).join('\n');
  }
  const table = [r.columns, ...r.rows.map((row) => row.map(cell))];
  const widths = r.columns.map((_, i) => Math.min(60, Math.max(...table.map((row) => (row[i] ?? '').length))));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.slice(0, 60).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const out = [line(r.columns), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)];
  out.push(`(${r.rows.length} row${r.rows.length === 1 ? '' : 's'}${r.truncated ? ', truncated: use --max-rows' : ''})`);
  return out.join('\n');
}
