// Retention: keeps the DuckDB file inside its age and disk limits on a site that may be
// offline for weeks. Age: rows older than maxAgeDays are deleted from both tables, and
// alerts resolved longer ago than that.
// Disk: while the used size (live blocks + WAL) is over maxDiskMB, the oldest 10% of
// readings (or the share the store is over by) are deleted and the file checkpointed, so
// their blocks are reused; events (alerts, access logs) go only when no readings are left.
// With sync on, rows the cloud has acknowledged go first, and unsent rows deleted are
// counted per stream (reported upstream). DuckDB does not shrink the file itself, so the
// file stays near its high-water mark but stops growing.
import { statSync } from 'node:fs';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import { streamFilter, type Stream } from '../kernel/streams.js';
import { addDropped, readMarks } from './sync-marks.js';
import { withConnection } from '../kernel/duckdb.js';

export interface RetentionLimits {
  maxAgeDays: number;
  maxDiskMB: number;
}

export interface RetentionResult {
  age: { readings: number; events: number; alerts: number };
  disk: { readings: number; events: number };
  /** Rows deleted before the cloud acknowledged them (sync on), by stream. */
  unsentDropped: Record<Stream, number>;
  usedBytes: number;
}

const MAX_DISK_ROUNDS = 20;

function walBytes(path: string): number {
  try {
    return statSync(path + '.wal').size;
  } catch {
    return 0;
  }
}

export async function usedBytes(instance: DuckDBInstance, path: string): Promise<number> {
  return withConnection(instance, async (c) => {
    const r = (await c.runAndReadAll('SELECT used_blocks::DOUBLE * block_size::DOUBLE FROM pragma_database_size()')).getRows();
    return (r[0]?.[0] as number) + walBytes(path);
  });
}

export async function applyRetention(
  instance: DuckDBInstance,
  path: string,
  limits: RetentionLimits,
  metrics: Metrics,
  log: Logger,
  now = Date.now(),
  opts: { sync?: boolean } = {},
): Promise<RetentionResult> {
  const result: RetentionResult = {
    age: { readings: 0, events: 0, alerts: 0 },
    disk: { readings: 0, events: 0 },
    unsentDropped: { priority: 0, events: 0, telemetry: 0 },
    usedBytes: 0,
  };
  const cutoff = now - limits.maxAgeDays * 86_400_000;
  await withConnection(instance, async (c) => {
    await rememberSeqHighWater(c);
    const tiers = await dropTiers(c, opts.sync === true);
    for (const tier of tiers) {
      const col = tier.table === 'readings' ? 'ts' : 'time';
      const n = await deleteCounted(c, tier, `${col} < to_timestamp(${cutoff / 1000})`, result);
      result.age[tier.table] += n;
      metrics.retentionDropped.inc({ table: tier.table, reason: 'age' }, n);
    }
    // Alert rows are current state, not history: only resolved ones age out (their
    // lifecycle stays in `events`); an open or acknowledged alert is kept however old.
    const alerts = await c.run(`DELETE FROM alerts WHERE status = 'resolved' AND resolved_at < to_timestamp($1::DOUBLE / 1000)`, [cutoff]);
    result.age.alerts = alerts.rowsChanged;
    metrics.retentionDropped.inc({ table: 'alerts', reason: 'age' }, alerts.rowsChanged);
    const limit = limits.maxDiskMB * 1024 * 1024;
    for (let round = 0; round < MAX_DISK_ROUNDS; round++) {
      await checkpoint(c, log);
      result.usedBytes = await usedBytes(instance, path);
      if (result.usedBytes <= limit) break;
      const tier = await firstNonEmpty(c, tiers);
      if (!tier) break;
      // Delete the share we are over by (at least 10%), so a big overshoot takes one round.
      const share = Math.min(1, Math.max(0.1, 1 - limit / result.usedBytes));
      const oldest = `seq < (SELECT min(seq) + greatest(1, ceil(count(*) * ${share}))::BIGINT FROM ${tier.table} WHERE ${tier.where})`;
      const n = await deleteCounted(c, tier, oldest, result);
      result.disk[tier.table] += n;
      metrics.retentionDropped.inc({ table: tier.table, reason: 'disk' }, n);
    }
  });
  const dropped = result.age.readings + result.age.events + result.age.alerts + result.disk.readings + result.disk.events;
  if (dropped > 0) log.warn({ retention: result }, 'retention deleted rows');
  return result;
}

/**
 * Records each table's highest seq in `meta` before rows are deleted, so that a table
 * emptied by retention still resumes numbering after it (seq must never be reused:
 * the sync uploader resumes from the last seq it had acknowledged).
 */
async function rememberSeqHighWater(c: DuckDBConnection): Promise<void> {
  for (const table of ['readings', 'events'] as const) {
    await c.run(
      `INSERT INTO meta SELECT 'seq_high_water_${table}', max(seq)::VARCHAR FROM ${table} HAVING max(seq) IS NOT NULL
       ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value::BIGINT, excluded.value::BIGINT)::VARCHAR`,
    );
  }
}

// CHECKPOINT refuses to run while the writer has a transaction open; the next round or
// the next retention pass will get it, so a refusal is only logged.
async function checkpoint(c: DuckDBConnection, log: Logger): Promise<void> {
  try {
    await c.run('CHECKPOINT');
  } catch (err) {
    log.debug({ err }, 'checkpoint deferred');
  }
}

/** A slice of one table that retention deletes from, oldest first, before the next slice. */
interface Tier {
  table: 'readings' | 'events';
  where: string;
  /** Set for rows the cloud has not acknowledged: deleting them is counted as dropped. */
  unsent?: Stream;
}

// Telemetry goes first, events only once no readings remain. With sync on, rows the cloud
// already has go before unsent ones, and unsent alerts/access events go last of all.
async function dropTiers(c: DuckDBConnection, sync: boolean): Promise<Tier[]> {
  if (!sync)
    return [
      { table: 'readings', where: 'TRUE' },
      { table: 'events', where: 'TRUE' },
    ];
  const { acked } = await readMarks(c);
  const p = streamFilter('priority'),
    e = streamFilter('events');
  return [
    { table: 'readings', where: `seq <= ${acked.telemetry}` },
    { table: 'readings', where: `seq > ${acked.telemetry}`, unsent: 'telemetry' },
    { table: 'events', where: `((${p} AND seq <= ${acked.priority}) OR (${e} AND seq <= ${acked.events}))` },
    { table: 'events', where: `${e} AND seq > ${acked.events}`, unsent: 'events' },
    { table: 'events', where: `${p} AND seq > ${acked.priority}`, unsent: 'priority' },
  ];
}

async function firstNonEmpty(c: DuckDBConnection, tiers: Tier[]): Promise<Tier | null> {
  for (const t of tiers) {
    const r = (await c.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${t.table} WHERE ${t.where}`)).getRows()[0][0] as number;
    if (r > 0) return t;
  }
  return null;
}

/** Deletes the tier's rows matching `cond`; unsent ones are counted in `meta` in the same transaction. */
async function deleteCounted(c: DuckDBConnection, t: Tier, cond: string, result: RetentionResult): Promise<number> {
  await c.run('BEGIN TRANSACTION');
  try {
    const r = await c.run(`DELETE FROM ${t.table} WHERE ${t.where} AND ${cond}`);
    if (t.unsent) {
      await addDropped(c, t.unsent, r.rowsChanged);
      result.unsentDropped[t.unsent] += r.rowsChanged;
    }
    await c.run('COMMIT');
    return r.rowsChanged;
  } catch (err) {
    await c.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
