// The sync bench's synthetic backlog (written straight into the gateway's DuckDB file with one
// INSERT … SELECT FROM range()) and its end-to-end fingerprint. The child processes import this
// file too, so it loads no product module up front.
import type { DuckDBConnection } from '@duckdb/node-api';

export const SITE = 'bench';
export const GATEWAY_ID = 'bench-gw';
/** A secret for the jsonl baseline's HMAC (it signs like the product, with the product's code). */
export const JSONL_SECRET = 'sync-bench-jsonl-secret';

export type Backlog = { readings: number; devices: number; points: number };

// What each point reports: [name, unit, kind, center, amp, period s, noise]. `wave`: center + a
// per-device offset (±20% of amp) + amp·sin(2π·t/period + per-device phase) + uniform noise in
// ±noise. `counter`: an energy meter, 0.5…5 kW per device, integrated (kWh). `drain`: a battery
// level losing 0.1 %/h from a per-device start (60…100 %). All rounded to 2 decimals.
export const POINT_KINDS = [
  ['temperature', '°C', 'wave', 22, 3, 3_600, 0.05],
  ['humidity', '%RH', 'wave', 45, 10, 7_200, 0.3],
  ['power', 'kW', 'wave', 2.5, 1.5, 900, 0.05],
  ['voltage', 'V', 'wave', 230, 2, 600, 0.2],
  ['current', 'A', 'wave', 10, 5, 900, 0.1],
  ['co2', 'ppm', 'wave', 700, 250, 5_400, 5],
  ['pressure', 'hPa', 'wave', 1013, 8, 86_400, 0.05],
  ['flow', 'l/min', 'wave', 30, 10, 1_800, 0.2],
  ['energy', 'kWh', 'counter', 0, 0, 0, 0],
  ['battery', '%', 'drain', 0, 0, 0, 0],
] as const;

/** How the backlog is laid out, for the report. */
export function backlogShape(opts: Backlog, t0Ms: number): Record<string, unknown> {
  return {
    readings: opts.readings,
    seq: `1…${opts.readings}, gap-free, in ts order`,
    layout: `${opts.devices} devices (dev-0000…) × ${opts.points} points, one reading per point per second per device; device d reports at +⌊d·1000/${opts.devices}⌋ ms within each second`,
    span: { from: new Date(t0Ms).toISOString(), seconds: Math.ceil(opts.readings / (opts.devices * opts.points)) },
    points: POINT_KINDS.slice(0, opts.points).map(([name, unit, kind]) => `${name} [${unit}] ${kind}`),
  };
}

// The INSERT that fills `readings` with the backlog in one statement. Reading i (0-based): tick
// ⌊i / (D·P)⌋ (seconds since t0), device ⌊i / P⌋ mod D, point i mod P; seq i + 1. Noise comes
// from hash(i), so every run holds the same values.
function backlogSql({ readings: n, devices: d, points: p }: Backlog, t0Ms: number): string {
  const sql = (x: string | number) => (typeof x === 'string' ? `'${x}'` : Number.isInteger(x) ? `${x}.0` : String(x));
  const kinds = POINT_KINDS.slice(0, p).map((k, i) => `(${i}, ${k.map(sql).join(', ')})`);
  // t: seconds since t0 of this reading; phase and offset per device; u: noise in [-1, 1].
  return `INSERT INTO readings
WITH kinds(p, name, unit, kind, center, amp, period, noise) AS (VALUES ${kinds.join(', ')}),
r AS (
  SELECT range AS i, range // ${d * p} AS tick, (range // ${p}) % ${d} AS d, range % ${p} AS p FROM range(${n})
),
x AS (
  SELECT r.i, r.d, k.*,
         r.tick * 1000 + (r.d * 1000) // ${d} AS ms,
         (r.tick * 1000 + (r.d * 1000) // ${d}) / 1000.0 AS t,
         ((r.d * 7919) % 1000) / 1000.0 AS phase,
         (((r.d * 104729) % 201) / 100.0 - 1.0) AS shift,
         ((hash(r.i) % 2001)::DOUBLE / 1000.0 - 1.0) AS u
  FROM r JOIN kinds k ON k.p = r.p
)
SELECT i + 1,
       epoch_ms(${Math.trunc(t0Ms)} + ms)::TIMESTAMPTZ,
       printf('dev-%04d', d),
       name,
       round(CASE kind
         WHEN 'wave' THEN center + 0.2 * amp * shift + amp * sin(2 * pi() * (t / period + phase)) + noise * u
         WHEN 'counter' THEN 1000.0 + d * 7.3 + t * (0.5 + (d % 10) * 0.5) / 3600.0
         ELSE 100.0 - (d % 40) - t * 0.1 / 3600.0
       END, 2),
       NULL, unit, NULL
FROM x ORDER BY i`;
}

/** Order-independent fingerprint of the reading columns both sides hold, for the end-to-end check. */
export async function fingerprint(c: DuckDBConnection) {
  const sql = `SELECT count(*)::DOUBLE, count(DISTINCT seq)::DOUBLE, min(seq)::DOUBLE, max(seq)::DOUBLE,
    bit_xor(hash(seq, epoch_ms(ts), device, point, value, unit))::VARCHAR FROM readings`;
  const [rows, distinctSeq, minSeq, maxSeq, hash] = (await c.runAndReadAll(sql)).getRows()[0] as [number, number, number, number, string];
  return { rows, distinctSeq, minSeq, maxSeq, hash };
}

/** Creates the gateway's DuckDB file (its own DDL) and fills it with the backlog, which piled up during an outage that ends now. */
export async function fillBacklog(path: string, opts: Backlog) {
  const { openDatabase } = await import('../../../gateway/store/db.js');
  const t0Ms = Math.floor(Date.now() / 1000) * 1000 - Math.ceil(opts.readings / (opts.devices * opts.points)) * 1000;
  const t = performance.now();
  const db = await openDatabase(path, { settings: { TimeZone: 'UTC' } });
  try {
    await db.writer.run(backlogSql(opts, t0Ms));
    await db.writer.run('CHECKPOINT');
    const size = (await db.writer.runAndReadAll('SELECT used_blocks::DOUBLE * block_size FROM pragma_database_size()')).getRows()[0][0];
    return { seconds: (performance.now() - t) / 1000, t0Ms, storeBytes: Number(size), fingerprint: await fingerprint(db.writer) };
  } finally {
    db.close();
  }
}
export type BacklogInfo = Awaited<ReturnType<typeof fillBacklog>>;
