// Options, the synthetic backlog and the configs of the sync bench (scripts/bench/sync.ts).
import { parseArgs } from 'node:util';
import type { DuckDBConnection } from '@duckdb/node-api';
import { openDatabase } from '../../../gateway/store/db.js';
import { BENCH_RATE_LIMITS, UsageError, number } from './modbus-setup.js';

export const SCENARIOS = ['parquet', 'jsonl'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface SyncOptions {
  readings: number;
  devices: number;
  points: number;
  batch: number;
  only: ScenarioName[] | null;
  /** Per scenario: past this the drain is reported as incomplete. */
  maxSeconds: number;
}

export const LOOPBACK = '127.0.0.1';
export const SITE = 'bench';
export const GATEWAY_ID = 'bench-gw';
/** Same heap cap as `npm start` and the systemd unit, for the gateway-side processes. */
export const GATEWAY_HEAP_MB = 256;
/** The aims. */
export const AIM_READINGS_PER_SEC = 200_000;
export const AIM_BYTES_PER_READING = 4;
/** RSS of the child processes is sampled this often (VmHWM gives the exact peak besides). */
export const SAMPLE_EVERY_MS = 100;
/** A secret for the jsonl baseline's HMAC (it signs like the product, with the product's code). */
export const JSONL_SECRET = 'sync-bench-jsonl-secret';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- options ----------------------------------------------------------------------

export function parseOptions(args: string[]): SyncOptions {
  try {
    return readOptions(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
}

function readOptions(args: string[]): SyncOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      readings: { type: 'string' },
      devices: { type: 'string' },
      points: { type: 'string' },
      batch: { type: 'string' },
      only: { type: 'string' },
      'max-seconds': { type: 'string' },
    },
  });
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const unknown = only?.filter((n) => !(SCENARIOS as readonly string[]).includes(n)) ?? [];
  if (unknown.length) throw new UsageError(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  if (only && only.length === 0) throw new UsageError(`--only names no scenario; known: ${SCENARIOS.join(', ')}`);
  return {
    readings: number('readings', values.readings, 1_000_000, 1, 20_000_000, true),
    devices: number('devices', values.devices, 1_000, 1, 100_000, true),
    points: number('points', values.points, 10, 1, POINT_KINDS.length, true),
    // sync.batchRows: the site schema allows up to 500000; below 100 the uploader would not shrink on 413.
    batch: number('batch', values.batch, 50_000, 100, 500_000, true),
    only: only as ScenarioName[] | null,
    maxSeconds: number('max-seconds', values['max-seconds'], 120, 1, 600, false),
  };
}

// ---- the backlog --------------------------------------------------------------------

/**
 * What each point of a device reports. `wave`: center + a per-device offset (±20% of amp)
 * + amp·sin(2π·t/period + per-device phase) + uniform noise in ±noise, rounded to 2
 * decimals. `counter`: an energy meter, 0.5…5 kW per device, integrated (kWh, 2 decimals).
 * `drain`: a battery level losing 0.1 %/h from a per-device start.
 */
export interface PointKind {
  name: string;
  unit: string;
  kind: 'wave' | 'counter' | 'drain';
  center: number;
  amp: number;
  periodS: number;
  noise: number;
}

export const POINT_KINDS: readonly PointKind[] = [
  { name: 'temperature', unit: '°C', kind: 'wave', center: 22, amp: 3, periodS: 3_600, noise: 0.05 },
  { name: 'humidity', unit: '%RH', kind: 'wave', center: 45, amp: 10, periodS: 7_200, noise: 0.3 },
  { name: 'power', unit: 'kW', kind: 'wave', center: 2.5, amp: 1.5, periodS: 900, noise: 0.05 },
  { name: 'voltage', unit: 'V', kind: 'wave', center: 230, amp: 2, periodS: 600, noise: 0.2 },
  { name: 'current', unit: 'A', kind: 'wave', center: 10, amp: 5, periodS: 900, noise: 0.1 },
  { name: 'co2', unit: 'ppm', kind: 'wave', center: 700, amp: 250, periodS: 5_400, noise: 5 },
  { name: 'pressure', unit: 'hPa', kind: 'wave', center: 1013, amp: 8, periodS: 86_400, noise: 0.05 },
  { name: 'flow', unit: 'l/min', kind: 'wave', center: 30, amp: 10, periodS: 1_800, noise: 0.2 },
  { name: 'energy', unit: 'kWh', kind: 'counter', center: 0, amp: 0, periodS: 0, noise: 0 },
  { name: 'battery', unit: '%', kind: 'drain', center: 0, amp: 0, periodS: 0, noise: 0 },
];

export const deviceId = (d: number) => `dev-${String(d).padStart(4, '0')}`;

/** How the backlog is laid out, for the report. */
export function backlogShape(opts: SyncOptions, t0Ms: number): Record<string, unknown> {
  const perTick = opts.devices * opts.points;
  return {
    readings: opts.readings,
    seq: `1…${opts.readings}, gap-free, in ts order`,
    layout: `${opts.devices} devices (${deviceId(0)}…) × ${opts.points} points, one reading per point per second per device; device d reports at +⌊d·1000/${opts.devices}⌋ ms within each second`,
    span: { from: new Date(t0Ms).toISOString(), seconds: Math.ceil(opts.readings / perTick) },
    points: POINT_KINDS.slice(0, opts.points).map((k) =>
      k.kind === 'wave'
        ? `${k.name} [${k.unit}] ${k.center}±${k.amp} (sine, period ${k.periodS} s) + noise ±${k.noise}, 2 decimals`
        : k.kind === 'counter'
          ? `${k.name} [${k.unit}] meter counter, 0.5…5 kW per device, 2 decimals`
          : `${k.name} [${k.unit}] 60…100 %, −0.1 %/h, 2 decimals`,
    ),
  };
}

const sqlNum = (x: number) => (Number.isInteger(x) ? `${x}.0` : String(x));
const sqlStr = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The INSERT that fills `readings` with the backlog in one statement. Reading i (0-based):
 * tick ⌊i / (D·P)⌋ (seconds since t0), device ⌊i / P⌋ mod D, point i mod P; seq i + 1.
 * Noise comes from hash(i), so every run holds the same values.
 */
export function backlogSql(opts: SyncOptions, t0Ms: number): string {
  const { readings: n, devices: d, points: p } = opts;
  const kinds = POINT_KINDS.slice(0, p)
    .map((k, i) => `(${i}, ${sqlStr(k.name)}, ${sqlStr(k.unit)}, ${sqlStr(k.kind)}, ${sqlNum(k.center)}, ${sqlNum(k.amp)}, ${sqlNum(k.periodS)}, ${sqlNum(k.noise)})`)
    .join(', ');
  // t: seconds since t0 of this reading; phase and offset per device; u: noise in [-1, 1].
  return `INSERT INTO readings
WITH kinds(p, name, unit, kind, center, amp, period, noise) AS (VALUES ${kinds}),
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
export const FINGERPRINT_SQL = `SELECT count(*)::DOUBLE, count(DISTINCT seq)::DOUBLE, min(seq)::DOUBLE, max(seq)::DOUBLE,
  bit_xor(hash(seq, epoch_ms(ts), device, point, value, unit))::VARCHAR FROM readings`;

export interface Fingerprint {
  rows: number;
  distinctSeq: number;
  minSeq: number | null;
  maxSeq: number | null;
  hash: string | null;
}

export async function fingerprint(c: DuckDBConnection): Promise<Fingerprint> {
  const [rows, distinctSeq, minSeq, maxSeq, hash] = (await c.runAndReadAll(FINGERPRINT_SQL)).getRows()[0]! as [number, number, number | null, number | null, string | null];
  return { rows, distinctSeq, minSeq, maxSeq, hash };
}

export interface BacklogInfo {
  seconds: number;
  t0Ms: number;
  storeBytes: number;
  fingerprint: Fingerprint;
}

/** Creates the gateway's DuckDB file (its own DDL) and fills it with the backlog. */
export async function fillBacklog(path: string, opts: SyncOptions): Promise<BacklogInfo> {
  const ticks = Math.ceil(opts.readings / (opts.devices * opts.points));
  // The backlog piled up during an outage that ends now.
  const t0Ms = Math.floor(Date.now() / 1000) * 1000 - ticks * 1000;
  const t = performance.now();
  const db = await openDatabase(path, { settings: { TimeZone: 'UTC' } });
  try {
    const c = db.writer;
    await c.run(backlogSql(opts, t0Ms));
    await c.run('CHECKPOINT');
    const size = (await c.runAndReadAll('SELECT used_blocks::DOUBLE * block_size FROM pragma_database_size()')).getRows()[0]![0] as number;
    return { seconds: (performance.now() - t) / 1000, t0Ms, storeBytes: size, fingerprint: await fingerprint(c) };
  } finally {
    db.close();
  }
}

// ---- configs --------------------------------------------------------------------------

/** The gateway's site config (plain object, as YAML would give). */
export function siteConfig(dataDir: string, cloudUrl: string, batchRows: number): Record<string, unknown> {
  return {
    site: SITE,
    dataDir,
    log: { level: 'warn' },
    // The backlog's timestamps are recent; a long age limit keeps retention from ever touching them.
    store: { retention: { maxAgeDays: 36_500, checkIntervalS: 86_400 } },
    http: { host: LOOPBACK, port: 0, tokens: [], rateLimit: BENCH_RATE_LIMITS },
    drivers: { mqtt: { enabled: false }, simulator: { enabled: false } },
    sync: { enabled: true, url: cloudUrl, batchRows, idleMs: 50 },
  };
}

/** The cloud API's config: loopback on a free port, its defaults otherwise. */
export function cloudConfig(dataDir: string): Record<string, unknown> {
  return { dataDir, log: { level: 'warn' }, http: { host: LOOPBACK, port: 0, rateLimit: BENCH_RATE_LIMITS } };
}
