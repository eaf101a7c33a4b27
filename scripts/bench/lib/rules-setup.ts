// Options, rule set, site config and reading stream of the rules bench (scripts/bench/rules.ts).
import { parseArgs } from 'node:util';
import type { RuleConfig } from '../../../config/rules-schema.js';
import type { Reading } from '../../../gateway/contract/types.js';
import { BENCH_RATE_LIMITS, UsageError, number } from './modbus-setup.js';

export const SCENARIOS = ['workers', 'inline'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface RulesOptions {
  rules: number;
  rate: number;
  seconds: number;
  batch: number;
  probeMs: number;
  only: ScenarioName[] | null;
  profile: boolean;
}

export const LOOPBACK = '127.0.0.1';
export const SITE = 'bench';
export const ZONE = 'bench';
export const TIMEZONE = 'UTC';
export const WARMUP_MS = 1_000;
export const SAMPLE_EVERY_MS = 250;
/** How long after the last probe the bench waits for its write to reach the peer. */
export const DRAIN_MS = 500;
/** Sensor devices s-000… and points p0…: DEVICES × POINTS series. */
export const DEVICES = 100;
export const POINTS = 10;
/** Probe rules: probe-k fires on every reading of probe/t<k> and writes act/relay. */
export const PROBE_RULES = 10;
export const PROBE_DEVICE = 'probe';
export const ACT_DEVICE = 'act';
export const ACT_POINT = 'relay';
export const RELAY_COIL = 0;
/** Period of the sine every series follows, so conditions keep crossing their thresholds. */
export const WAVE_MS = 8_000;
/** The target for reading → lock command. */
export const TARGET_P99_MS = 5;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- options ----------------------------------------------------------------------

export function parseOptions(args: string[]): RulesOptions {
  try {
    return readOptions(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
}

function readOptions(args: string[]): RulesOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      rules: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      batch: { type: 'string' },
      'probe-ms': { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean' },
    },
  });
  const batch = number('batch', values.batch, 100, POINTS, 2000, true);
  if (batch % POINTS !== 0) throw new UsageError(`--batch must be a multiple of ${POINTS} (one row of ${POINTS} points per timestamp), got ${batch}`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : null;
  const unknown = only?.filter((n) => !(SCENARIOS as readonly string[]).includes(n)) ?? [];
  if (unknown.length) throw new UsageError(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  const rate = number('rate', values.rate, 10_000, 10, 200_000, false);
  // One message per device per cycle: the rows of one message must fit between two of them.
  if (rate / batch > 2_000) throw new UsageError(`--rate / --batch must be at most 2000 messages/s, got ${rate / batch}`);
  return {
    rules: number('rules', values.rules, 1_000, PROBE_RULES + 1, 20_000, true),
    rate,
    seconds: number('seconds', values.seconds ?? process.env.BENCH_SECONDS, 5, 0.5, 60, false),
    batch,
    probeMs: number('probe-ms', values['probe-ms'], 20, 5, 1_000, true),
    only: only as ScenarioName[] | null,
    profile: values.profile ?? false,
  };
}

// ---- rules ------------------------------------------------------------------------

const pad3 = (i: number) => String(i).padStart(3, '0');
export const deviceId = (d: number) => `s-${pad3(d)}`;
export const pointName = (p: number) => `p${p}`;
const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/**
 * `count` rules: count − 10 load rules, each exact-triggered on one series (rule j on
 * s-(j mod 100)/p(⌊j/100⌋ mod 10), so 990 rules cover 990 of the 1000 series), in four
 * kinds that all keep firing on the sine, then the 10 probe rules (no `if`, no cooldown).
 */
export function buildRules(count: number): RuleConfig[] {
  const rules: RuleConfig[] = [];
  const load = count - PROBE_RULES;
  for (let j = 0; j < load; j++) {
    const device = deviceId(j % DEVICES);
    const point = pointName(Math.floor(j / DEVICES) % POINTS);
    const t = 70 + (j % 20);
    const base = {
      id: `r-${j}`,
      enabled: true,
      when: { reading: { device, point } },
      then: [{ publish: { topic: `${SITE}/alarms/{{rule}}`, payload: { device: '{{device}}', point: '{{point}}', value: '{{value}}' }, qos: 0 } }],
    };
    switch (j % 4) {
      case 0: // above a threshold while the minute's average is sane; hysteresis
        rules.push({
          ...base,
          if: { all: [{ value: { op: '>', value: t } }, { avg: { window: '1m', op: '>', value: 10 } }] },
          clear: { value: { op: '<', value: t - 20 } },
        });
        break;
      case 1: // a 2 s average high for 500 ms
        rules.push({
          ...base,
          if: { avg: { window: '2s', op: '>', value: 50 + (j % 10) } },
          for: '500ms',
          clear: { avg: { window: '2s', op: '<', value: 40 } },
        });
        break;
      case 2: // low during the (always open) hours, with a cooldown
        rules.push({
          ...base,
          if: { all: [{ value: { op: '<', value: 100 - t } }, { time: { between: ['00:00', '00:00'], days: [...ALL_DAYS] } }] },
          cooldown: '1s',
        });
        break;
      default: // the last second's minimum low for 200 ms
        rules.push({
          ...base,
          if: { min: { window: '1s', op: '<', value: 20 } },
          for: '200ms',
          clear: { min: { window: '1s', op: '>', value: 40 } },
          cooldown: '2s',
        });
    }
  }
  for (let k = 0; k < PROBE_RULES; k++) {
    rules.push({
      id: `probe-${k}`,
      enabled: true,
      when: { reading: { device: PROBE_DEVICE, point: `t${k}` } },
      then: [{ write: { device: ACT_DEVICE, point: ACT_POINT, value: k % 2 === 0 } }],
    });
  }
  return rules;
}

/** The write value probe seq `i` must produce (1/0 as the peer reports the coil). */
export const probeExpected = (seq: number) => ((seq % PROBE_RULES) % 2 === 0 ? 1 : 0);

export function siteConfig(opts: RulesOptions, modbusPort: number, dataDir: string, rules: RuleConfig[]): Record<string, unknown> {
  return {
    site: SITE,
    timezone: TIMEZONE,
    dataDir,
    log: { level: 'silent' },
    // Retention would scan the table mid-run; the bench measures rules alone.
    store: { retention: { checkIntervalS: 86_400 } },
    http: { host: LOOPBACK, port: 0, tokens: [], rateLimit: BENCH_RATE_LIMITS },
    drivers: {
      mqtt: { enabled: true, host: LOOPBACK, port: 0, maxMessagesPerSecond: 0 },
      simulator: { enabled: false },
      modbus: { enabled: true, lines: [{ id: 'act-line', transport: 'tcp', host: LOOPBACK, port: modbusPort, timeoutMs: 1000, retries: 0 }] },
    },
    devices: [
      {
        id: ACT_DEVICE,
        zone: ZONE,
        // Polled once a minute, so the line is free for the writes being measured.
        modbus: { line: 'act-line', unit: 1, pollMs: 60_000, points: [{ name: ACT_POINT, table: 'coil', address: RELAY_COIL, type: 'bool', writable: true }] },
      },
    ],
    rules,
  };
}

// ---- the reading stream ----------------------------------------------------------

/**
 * Message m goes to device s-(m mod 100) and holds batch/10 rows of all 10 points, with
 * timestamps spread evenly back to just after that device's previous message, so every
 * series gets rate/1000 readings per second in time order. Values follow a sine of
 * period WAVE_MS with a phase per series.
 */
export class ReadingStream {
  readonly rows: number;
  readonly messagesPerSec: number;
  private readonly rowSpacingMs: number;

  constructor(readonly opts: Pick<RulesOptions, 'rate' | 'batch'>) {
    this.rows = opts.batch / POINTS;
    this.messagesPerSec = opts.rate / opts.batch;
    this.rowSpacingMs = (DEVICES * 1000) / this.messagesPerSec / this.rows;
  }

  private value(d: number, p: number, ts: number): number {
    const phase = (((d * 7 + p * 13) % 100) / 100) * 2 * Math.PI;
    return Math.round((50 + 45 * Math.sin((2 * Math.PI * ts) / WAVE_MS + phase)) * 100) / 100;
  }

  /** Rows of message m sent at `now` (ms since the epoch): { p0…p9, ts } objects. */
  rowsOf(m: number, now: number): { device: string; rows: Array<Record<string, number>> } {
    const d = m % DEVICES;
    const rows: Array<Record<string, number>> = [];
    for (let r = 0; r < this.rows; r++) {
      const ts = Math.round(now - (this.rows - 1 - r) * this.rowSpacingMs);
      const row: Record<string, number> = {};
      for (let p = 0; p < POINTS; p++) row[pointName(p)] = this.value(d, p, ts);
      row.ts = ts;
      rows.push(row);
    }
    return { device: deviceId(d), rows };
  }

  /** The MQTT payload (telemetry JSON array) of message m. */
  payload(m: number, now: number): { topic: string; payload: Buffer } {
    const { device, rows } = this.rowsOf(m, now);
    return { topic: `devices/${SITE}/${ZONE}/${device}/telemetry`, payload: Buffer.from(JSON.stringify(rows)) };
  }

  /** The readings the gateway decodes from message m (same order). */
  readings(m: number, now: number): Reading[] {
    const { device, rows } = this.rowsOf(m, now);
    const out: Reading[] = [];
    for (const row of rows) for (let p = 0; p < POINTS; p++) out.push({ ts: row.ts!, device, point: pointName(p), value: row[pointName(p)]! });
    return out;
  }
}

export const probeTopic = () => `devices/${SITE}/${ZONE}/${PROBE_DEVICE}/telemetry`;
export const probePoint = (seq: number) => `t${seq % PROBE_RULES}`;

// ---- pacing -----------------------------------------------------------------------

/**
 * Calls `send(m)` for message m at `perSec` messages per second from start(): a timer
 * every few ms sends whatever is due. `ready()` false (e.g. a socket wanting a drain)
 * defers; messages more than 100 ms late are skipped and counted, so a slow
 * consumer is seen as a lower achieved rate instead of a burst.
 */
export class Pacer {
  sent = 0;
  skipped = 0;
  private timer: NodeJS.Timeout | null = null;
  private t0 = 0;
  private due = 0;

  constructor(
    private readonly perSec: number,
    private readonly send: (m: number) => void,
    private readonly ready: () => boolean = () => true,
    private readonly everyMs = 2,
    /** Messages' worth of 100 ms. */
    private readonly maxBehind = Math.max(1, Math.ceil(perSec / 10)),
  ) {}

  start(): void {
    this.t0 = performance.now();
    this.timer = setInterval(() => this.pump(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private pump(): void {
    const target = Math.floor(((performance.now() - this.t0) * this.perSec) / 1000);
    if (target - this.due > this.maxBehind) {
      const skip = target - this.due - this.maxBehind;
      this.skipped += skip;
      this.due += skip;
    }
    while (this.due < target && this.ready()) {
      this.send(this.sent);
      this.sent++;
      this.due++;
    }
  }
}
