// Office read side on DuckDB: readings (raw and time-bucketed), events, Parquet export.
// Every filter value is a bound parameter; only validated intervals and limits are inlined.
import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { Stream } from '../protocol.js';
import { Where, iso, rows, withConnection } from './duckdb-schema.js';
import type { CloudEvent, CloudReading, EventQuery, ExportQuery, ExportResult, ReadingBucket, ReadingQuery } from './store.js';
import { parseBucket } from '../../gateway/kernel/query-params.js';

const timeMs = (col: string) => `epoch_ms(${col})::DOUBLE`;

function readingWhere(q: Omit<ReadingQuery, 'limit'>): Where {
  const w = new Where();
  if (q.site !== undefined) w.add('site = ?', q.site);
  if (q.gateway !== undefined) w.add('gateway_id = ?', q.gateway);
  if (q.device !== undefined) w.add('device = ?', q.device);
  if (q.point !== undefined) w.add('point = ?', q.point);
  if (q.from !== undefined) w.add('ts >= make_timestamptz(?::BIGINT * 1000)', q.from);
  if (q.to !== undefined) w.add('ts < make_timestamptz(?::BIGINT * 1000)', q.to);
  return w;
}

/** `alert.*` → LIKE 'alert.%' with the prefix's own % and _ escaped; otherwise exact. */
function typeClause(w: Where, type: string): void {
  if (type.endsWith('*')) w.add(`type LIKE ? ESCAPE '\\'`, type.slice(0, -1).replace(/[\\%_]/g, (ch) => '\\' + ch) + '%');
  else w.add('type = ?', type);
}

function eventWhere(q: Omit<EventQuery, 'limit'> & { device?: string }): Where {
  const w = new Where();
  if (q.site !== undefined) w.add('site = ?', q.site);
  if (q.gateway !== undefined) w.add('gateway_id = ?', q.gateway);
  if (q.type !== undefined) typeClause(w, q.type);
  if (q.device !== undefined) w.add('subject = ?', q.device);
  if (q.from !== undefined) w.add('time >= make_timestamptz(?::BIGINT * 1000)', q.from);
  if (q.to !== undefined) w.add('time < make_timestamptz(?::BIGINT * 1000)', q.to);
  return w;
}

export async function queryReadings(instance: DuckDBInstance, q: ReadingQuery): Promise<CloudReading[]> {
  const w = readingWhere(q);
  const sql = `SELECT gateway_id, site, seq::DOUBLE, ${timeMs('ts')}, device, point, value, text, unit, quality
               FROM readings ${w.sql} ORDER BY ts, gateway_id, seq LIMIT ${Math.trunc(q.limit)}`;
  const out = await withConnection(instance, (c) => rows(c, sql, w.params));
  return out.map((r) => ({
    gateway: r[0] as string,
    site: r[1] as string,
    seq: r[2] as number,
    ts: iso(r[3] as number)!,
    device: r[4] as string,
    point: r[5] as string,
    value: r[6] as number | null,
    text: r[7] as string | null,
    unit: r[8] as string | null,
    quality: r[9] as string | null,
  }));
}

export async function queryBuckets(instance: DuckDBInstance, q: ReadingQuery, bucket: string): Promise<ReadingBucket[]> {
  const w = readingWhere(q);
  const sql = `SELECT gateway_id, device, point, ${timeMs(`time_bucket(${parseBucket(bucket)}, ts)`)} AS b,
                      count(*)::DOUBLE, avg(value), min(value), max(value), arg_max(value, ts)
               FROM readings ${w.sql}
               GROUP BY gateway_id, device, point, b ORDER BY b, gateway_id, device, point LIMIT ${Math.trunc(q.limit)}`;
  const out = await withConnection(instance, (c) => rows(c, sql, w.params));
  return out.map((r) => ({
    gateway: r[0] as string,
    device: r[1] as string,
    point: r[2] as string,
    bucket: iso(r[3] as number)!,
    count: r[4] as number,
    avg: r[5] as number | null,
    min: r[6] as number | null,
    max: r[7] as number | null,
    last: r[8] as number | null,
  }));
}

/** Newest first. */
export async function queryEvents(instance: DuckDBInstance, q: EventQuery): Promise<CloudEvent[]> {
  const w = eventWhere(q);
  const sql = `SELECT gateway_id, site, stream, seq::DOUBLE, id, ${timeMs('time')}, type, source, subject, data::VARCHAR
               FROM events ${w.sql} ORDER BY time DESC, gateway_id, seq DESC LIMIT ${Math.trunc(q.limit)}`;
  const out = await withConnection(instance, (c) => rows(c, sql, w.params));
  return out.map((r) => ({
    gateway: r[0] as string,
    site: r[1] as string,
    stream: r[2] as Stream,
    seq: r[3] as number,
    id: r[4] as string,
    time: iso(r[5] as number)!,
    type: r[6] as string,
    source: r[7] as string,
    subject: r[8] as string | null,
    data: r[9] === null ? null : (JSON.parse(r[9] as string) as unknown),
  }));
}

/**
 * Writes the matching rows (at most maxRows, oldest first) to a zstd Parquet file under
 * tmpDir. The caller streams it and deletes it. For events, `device` matches the subject.
 */
export async function exportParquet(instance: DuckDBInstance, tmpDir: string, q: ExportQuery): Promise<ExportResult> {
  const telemetry = q.stream === 'telemetry';
  const w = telemetry ? readingWhere(q) : eventWhere(q);
  const select = telemetry
    ? `SELECT gateway_id AS gateway, site, seq, ts, device, point, value, text, unit, quality FROM readings ${w.sql} ORDER BY ts, gateway_id, seq`
    : `SELECT gateway_id AS gateway, site, stream, seq, id, time, type, source, subject, data::VARCHAR AS data FROM events ${w.sql} ORDER BY time, gateway_id, seq`;
  const max = Math.trunc(q.maxRows);
  const file = join(tmpDir, `export-${randomUUID()}.parquet`);
  try {
    return await withConnection(instance, async (c) => {
      const total = (await rows(c, `SELECT count(*)::DOUBLE FROM (${select} LIMIT ${max + 1})`, w.params))[0][0] as number;
      // The path is ours (a UUID under dataDir); quotes are doubled all the same.
      await c.run(`COPY (${select} LIMIT ${max}) TO '${file.replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION zstd)`, w.params);
      return { file, rows: Math.min(total, max), truncated: total > max };
    });
  } catch (err) {
    await unlink(file).catch(() => undefined);
    throw err;
  }
}
