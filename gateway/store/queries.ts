// Read side of the store: the queries behind the local API and `outpost query`.
// Each call takes its own short-lived connection so concurrent API requests never share
// one DuckDB connection (and never block the group-commit writer).
import type { DuckDBInstance, DuckDBValue } from '@duckdb/node-api';
import type { OutpostEvent, ReadingValue } from '../contract/types.js';
import { withConnection } from '../kernel/duckdb.js';
import { parseBucket } from '../kernel/query-params.js';

export interface ReadingFilter {
  device?: string;
  point?: string;
  from?: number;
  to?: number;
  limit: number;
}

export interface ReadingRow {
  seq: number;
  ts: string;
  device: string;
  point: string;
  value: ReadingValue | null;
  unit: string | null;
  quality: string | null;
}

export interface BucketRow {
  bucket: string;
  device: string;
  point: string;
  avg: number | null;
  min: number | null;
  max: number | null;
  count: number;
}

function where(f: ReadingFilter, timeCol: string): { sql: string; params: DuckDBValue[] } {
  const clauses: string[] = [];
  const params: DuckDBValue[] = [];
  const add = (clause: string, v: DuckDBValue) => {
    params.push(v);
    clauses.push(clause.replace('?', `$${params.length}`));
  };
  if (f.device) add('device = ?', f.device);
  if (f.point) add('point = ?', f.point);
  if (f.from !== undefined) add(`${timeCol} >= to_timestamp(?::DOUBLE / 1000)`, f.from);
  if (f.to !== undefined) add(`${timeCol} < to_timestamp(?::DOUBLE / 1000)`, f.to);
  return { sql: clauses.length ? 'WHERE ' + clauses.join(' AND ') : '', params };
}

const iso = (ms: number) => new Date(ms).toISOString();

function decodeValue(value: number | null, text: string | null): ReadingValue | null {
  if (text === null) return value;
  if (value !== null && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

export async function queryReadings(instance: DuckDBInstance, f: ReadingFilter): Promise<ReadingRow[]> {
  const w = where(f, 'ts');
  const sql = `SELECT seq::DOUBLE, epoch_ms(ts)::DOUBLE, device, point, value, text, unit, quality
               FROM readings ${w.sql} ORDER BY ts, seq LIMIT ${Math.trunc(f.limit)}`;
  const rows = await withConnection(instance, async (c) => (await c.runAndReadAll(sql, w.params)).getRows());
  return rows.map((r) => ({
    seq: r[0] as number,
    ts: iso(r[1] as number),
    device: r[2] as string,
    point: r[3] as string,
    value: decodeValue(r[4] as number | null, r[5] as string | null),
    unit: r[6] as string | null,
    quality: r[7] as string | null,
  }));
}

export async function queryBuckets(instance: DuckDBInstance, f: ReadingFilter, bucket: string): Promise<BucketRow[]> {
  const w = where(f, 'ts');
  const sql = `SELECT epoch_ms(time_bucket(${parseBucket(bucket)}, ts))::DOUBLE AS b, device, point,
                      avg(value), min(value), max(value), count(*)::DOUBLE
               FROM readings ${w.sql} GROUP BY ALL ORDER BY b, device, point LIMIT ${Math.trunc(f.limit)}`;
  const rows = await withConnection(instance, async (c) => (await c.runAndReadAll(sql, w.params)).getRows());
  return rows.map((r) => ({
    bucket: iso(r[0] as number),
    device: r[1] as string,
    point: r[2] as string,
    avg: r[3] as number | null,
    min: r[4] as number | null,
    max: r[5] as number | null,
    count: r[6] as number,
  }));
}

export interface EventFilter {
  type?: string;
  source?: string;
  from?: number;
  to?: number;
  limit: number;
}

/** Events in CloudEvents 1.0 JSON form, newest first; `outpostseq` is the store sequence. */
export async function queryEvents(instance: DuckDBInstance, f: EventFilter): Promise<Record<string, unknown>[]> {
  const clauses: string[] = [];
  const params: DuckDBValue[] = [];
  if (f.type) {
    params.push(f.type.endsWith('*') ? f.type.slice(0, -1) + '%' : f.type);
    clauses.push(`type LIKE $${params.length}`);
  }
  if (f.source) {
    params.push(f.source);
    clauses.push(`source = $${params.length}`);
  }
  const w = where({ from: f.from, to: f.to, limit: f.limit }, 'time');
  const offset = params.length;
  const timeSql = w.sql.replace(/^WHERE /, '').replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
  if (timeSql) clauses.push(timeSql);
  params.push(...w.params);
  const sql = `SELECT ${EVENT_SELECT} FROM events ${clauses.length ? 'WHERE ' + clauses.join(' AND ') : ''}
               ORDER BY seq DESC LIMIT ${Math.trunc(f.limit)}`;
  const rows = await withConnection(instance, async (c) => (await c.runAndReadAll(sql, params)).getRows());
  return rows.map((r) => {
    const { seq, ...e } = eventFromRow(r);
    return { ...cloudEvent(e), outpostseq: seq };
  });
}

/** The events columns `eventFromRow` reads, in its order. */
export const EVENT_SELECT = 'seq::DOUBLE, id, epoch_ms(time)::DOUBLE, type, source, subject, data::VARCHAR';

/** One row of `SELECT ${EVENT_SELECT} FROM events` as an event with its seq. */
export function eventFromRow(r: readonly DuckDBValue[]): OutpostEvent & { seq: number } {
  return {
    seq: r[0] as number,
    id: r[1] as string,
    ts: r[2] as number,
    type: r[3] as string,
    source: r[4] as string,
    ...(r[5] !== null ? { subject: r[5] as string } : {}),
    ...(r[6] !== null ? { data: JSON.parse(r[6] as string) as unknown } : {}),
  };
}

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  datacontenttype?: 'application/json';
  data?: unknown;
  /** Extension: the id shared by the events of one rule firing's chain. */
  outpostcorrelationid?: string;
}

/** An event in CloudEvents 1.0 JSON form (the API's and the webhooks' shape). */
export function cloudEvent(e: OutpostEvent): CloudEvent {
  return {
    specversion: '1.0',
    id: e.id,
    source: e.source,
    type: e.type,
    time: iso(e.ts),
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    ...(e.data !== undefined ? { datacontenttype: 'application/json', data: e.data } : {}),
    ...(correlationOf(e.data) !== undefined ? { outpostcorrelationid: correlationOf(e.data) } : {}),
  };
}

/** The chain id events of one rule firing share (data.correlationId; an alert's in data.data), as a CloudEvents extension. */
function correlationOf(data: unknown, depth = 0): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const d = data as { correlationId?: unknown; data?: unknown };
  if (typeof d.correlationId === 'string') return d.correlationId;
  return depth === 0 ? correlationOf(d.data, 1) : undefined;
}

/** Last reading time per device, to seed the device registry at start. */
/** The newest stored numeric value of `point` per device (what a driver resumes from after a restart). */
export async function latestValues(instance: DuckDBInstance, point: string): Promise<Map<string, number>> {
  const rows = await withConnection(instance, async (c) =>
    (
      await c.runAndReadAll('SELECT device, arg_max(value, seq) FROM readings WHERE point = $1 AND value IS NOT NULL GROUP BY device', [
        point,
      ])
    ).getRows(),
  );
  return new Map(rows.map((r) => [r[0] as string, r[1] as number]));
}

export async function lastSeenByDevice(instance: DuckDBInstance): Promise<Map<string, number>> {
  const rows = await withConnection(instance, async (c) =>
    (await c.runAndReadAll('SELECT device, epoch_ms(max(ts))::DOUBLE FROM readings GROUP BY device')).getRows(),
  );
  return new Map(rows.map((r) => [r[0] as string, r[1] as number]));
}
