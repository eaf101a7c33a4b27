// DuckDB helpers every store shares (the gateway's and the cloud's): a short-lived
// connection per operation, and locking an instance down so no query can reach the file
// system (beyond named directories) or the network, or undo that with a SET.
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { sep } from 'node:path';

/** A connection of its own for `fn`: connections are cheap, and one is never shared. */
export async function withConnection<T>(instance: DuckDBInstance, fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  const conn = await instance.connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
  }
}

/** A string as a SQL literal (for the statements that take no parameters: COPY, SET). */
export const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * Locks the instance down for good: no file system outside `allowedDirs` (DuckDB adds
 * its own temp dir), no network, no extension installs or loads, and no later SET can
 * undo it — every connection of the instance inherits this. `extra` settings are applied
 * first (the configuration cannot change afterwards).
 */
export async function lockDown(
  conn: DuckDBConnection,
  allowedDirs: readonly string[],
  extra: Readonly<Record<string, string>> = {},
): Promise<void> {
  const dirs = allowedDirs.map((d) => sqlString(d.endsWith(sep) ? d : d + sep)).join(', ');
  for (const [k, v] of Object.entries(extra)) await conn.run(`SET ${k} = ${sqlString(v)}`);
  if (dirs) await conn.run(`SET allowed_directories = [${dirs}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET autoinstall_known_extensions = false');
  await conn.run('SET autoload_known_extensions = false');
  await conn.run('SET allow_community_extensions = false');
  await conn.run('SET lock_configuration = true');
}
