// Options and site config of the Modbus bench (scripts/bench/modbus.ts).
import { parseArgs } from 'node:util';
import { PEER_KINDS, type PeerKind } from './modbus-peer-child.js';

export const SCENARIOS = ['coalesced', 'uncoalesced'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface ModbusOptions {
  devices: number;
  points: number;
  seconds: number;
  pollMs: number;
  peer: PeerKind;
  only: ScenarioName[] | null;
  profile: boolean;
}

export const LOOPBACK = '127.0.0.1';
/** Benches poll the API far faster than a site would: no API rate limits in the way. */
export const BENCH_RATE_LIMITS = { authFailures: { max: 1_000_000 }, requests: { max: 1_000_000_000 } };
export const WARMUP_MS = 1_000;
export const SAMPLE_EVERY_MS = 250;
/** The protocol's (and the driver's default) most registers per read request. */
export const MAX_REGISTERS = 125;
/** Bounds on the point set, so the config stays parseable and the peer answerable. */
export const MAX_DEVICES = 500;
export const MAX_POINTS = 10_000;
export const MAX_TOTAL_POINTS = 100_000;
/** At or above this share of the ceiling, points/s is set by the poll interval. */
export const CEILING_SHARE = 0.9;
/** One core busy, as process CPU % counts it. */
export const SATURATED_CPU = 90;
/** An event-loop stall this long delays every poll due meanwhile. */
export const STALL_MS = 50;

export class UsageError extends Error {
  override name = 'UsageError';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- options ----------------------------------------------------------------------

export function number(name: string, raw: string | undefined, fallback: number, min: number, max: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got "${raw}"`);
  }
  return n;
}

export function parseOptions(args: string[]): ModbusOptions {
  try {
    return readOptions(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
}

export function readOptions(args: string[]): ModbusOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      devices: { type: 'string' },
      points: { type: 'string' },
      seconds: { type: 'string' },
      'poll-ms': { type: 'string' },
      peer: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean' },
    },
  });
  const devices = number('devices', values.devices, 20, 1, MAX_DEVICES, true);
  const points = number('points', values.points, 100, 1, MAX_POINTS, true);
  if (devices * points > MAX_TOTAL_POINTS) throw new UsageError(`--devices × --points must be at most ${MAX_TOTAL_POINTS}, got ${devices * points}`);
  const peer = values.peer ?? 'fast';
  if (!(PEER_KINDS as readonly string[]).includes(peer)) throw new UsageError(`--peer must be one of ${PEER_KINDS.join(', ')}, got "${peer}"`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const unknown = only?.filter((n) => !(SCENARIOS as readonly string[]).includes(n)) ?? [];
  if (unknown.length) throw new UsageError(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  return {
    devices,
    points,
    seconds: number('seconds', values.seconds ?? process.env.BENCH_SECONDS, 5, 0.5, 120, false),
    // The driver's schema minimum is 10 ms.
    pollMs: number('poll-ms', values['poll-ms'], 10, 10, 60_000, true),
    peer: peer as PeerKind,
    only: only as ScenarioName[] | null,
    profile: values.profile ?? false,
  };
}

// ---- the gateway under test ---------------------------------------------------------

export function siteConfig(opts: ModbusOptions, scenario: ScenarioName, ports: readonly number[], dataDir: string): Record<string, unknown> {
  const pad = (i: number, n: number) => String(i).padStart(String(n - 1).length, '0');
  const lines = ports.map((port, i) => ({ id: `line-${pad(i, opts.devices)}`, transport: 'tcp', host: LOOPBACK, port, timeoutMs: 1000, retries: 1 }));
  const points = Array.from({ length: opts.points }, (_, a) => ({ name: `r${pad(a, opts.points)}`, table: 'holding', address: a, type: 'uint16' }));
  const devices = lines.map((line, i) => ({
    id: `meter-${pad(i, opts.devices)}`,
    zone: 'bench',
    modbus: {
      line: line.id,
      unit: 1,
      pollMs: opts.pollMs,
      ...(scenario === 'uncoalesced' ? { maxRegistersPerRequest: 1 } : {}),
      points,
    },
  }));
  return {
    site: 'bench',
    dataDir,
    log: { level: 'silent' },
    // Retention would scan the table mid-run; the bench measures polling and commit alone.
    store: { retention: { checkIntervalS: 86_400 } },
    http: { host: LOOPBACK, port: 0, tokens: [], rateLimit: BENCH_RATE_LIMITS },
    drivers: { mqtt: { enabled: false }, simulator: { enabled: false }, modbus: { enabled: true, lines } },
    devices,
  };
}

/** Requests one device sends per poll cycle with the given register limit (consecutive uint16 points). */
export function requestsPerCycle(points: number, scenario: ScenarioName): number {
  return scenario === 'uncoalesced' ? points : Math.ceil(points / MAX_REGISTERS);
}
