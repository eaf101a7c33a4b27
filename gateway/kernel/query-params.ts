// Query parameters the local API and the cloud API both take: times (epoch ms, ISO-8601
// or relative) and time buckets, checked so they are safe to inline into SQL.

/** A query the caller got wrong (answered 400). */
export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

const BUCKET_UNITS: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day' };

/** `30s`, `1m`, `15m`, `1h`, `1d` → a DuckDB interval literal (validated, so safe to inline). */
export function parseBucket(bucket: string): string {
  const m = /^(\d{1,6})(s|m|h|d)$/.exec(bucket);
  if (!m || Number(m[1]) === 0) throw new QueryError(`bucket "${bucket}" must look like 30s, 1m, 15m, 1h or 1d`);
  return `INTERVAL '${Number(m[1])} ${BUCKET_UNITS[m[2]]}'`;
}

/** Accepts epoch milliseconds, an ISO-8601 time, or a relative `-15m`/`-2h`/`-1d` (from now). */
export function parseTime(value: string, name: string, now = Date.now()): number {
  if (/^\d+$/.test(value)) return Number(value);
  const rel = /^-(\d+)(s|m|h|d)$/.exec(value);
  if (rel) return now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new QueryError(`${name}="${value}" is not a time: use epoch ms, ISO-8601, or -15m/-2h/-1d`);
  return ms;
}
