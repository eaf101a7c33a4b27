// The rules bench's inputs (scripts/bench/rules.ts): its rule set, the gateway's site
// config, the reading stream and the pacer that sends it at a fixed rate.
import type { RuleConfig } from '../../../config/rules-schema.js';
import type { Reading } from '../../../gateway/contract/types.js';
import { LOOPBACK } from './procs.js';
import { benchSite } from './site.js';

export const SITE = 'bench';
export const ZONE = 'bench';
export const TIMEZONE = 'UTC';
/** Sensor devices s-000… and points p0…: DEVICES × POINTS series. */
export const DEVICES = 100;
export const POINTS = 10;
/** Probe rules: probe-k fires on every reading of probe/t<k> and writes act/relay. */
export const PROBE_RULES = 10;
export const PROBE_DEVICE = 'probe';
export const ACT_POINT = 'relay';
export const RELAY_COIL = 0;
/** Period of the sine every series follows, so conditions keep crossing their thresholds. */
const WAVE_MS = 8_000;

const deviceId = (d: number) => `s-${String(d).padStart(3, '0')}`;
const pointName = (p: number) => `p${p}`;
export const probeTopic = (): string => `devices/${SITE}/${ZONE}/${PROBE_DEVICE}/telemetry`;
export const probePoint = (seq: number): string => `t${seq % PROBE_RULES}`;
/** The coil value (1/0) probe `seq` must write. */
export const probeExpected = (seq: number): number => ((seq % PROBE_RULES) % 2 === 0 ? 1 : 0);

const value = (op: string, v: number) => ({ value: { op, value: v } });
const avg = (window: string, op: string, v: number) => ({ avg: { window, op, value: v } });
const min = (op: string, v: number) => ({ min: { window: '1s', op, value: v } });

// `count` rules: count − 10 load rules, each exact-triggered on one series (rule j on
// s-(j mod 100)/p(⌊j/100⌋ mod 10), so 990 rules cover 990 of the 1000 series), in four
// kinds that all keep firing on the sine, then the 10 probe rules (no `if`, no cooldown).
export function buildRules(count: number): RuleConfig[] {
  const days = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  const payload = { device: '{{device}}', point: '{{point}}', value: '{{value}}' };
  const rules: RuleConfig[] = [];
  for (let j = 0; j < count - PROBE_RULES; j++) {
    const [t, when] = [70 + (j % 20), { reading: { device: deviceId(j % DEVICES), point: pointName(Math.floor(j / DEVICES) % POINTS) } }];
    const base = { id: `r-${j}`, enabled: true, when, then: [{ publish: { topic: `${SITE}/alarms/{{rule}}`, payload, qos: 0 as const } }] };
    const kinds = [
      // above a threshold while the minute's average is sane; hysteresis
      { ...base, if: { all: [value('>', t), avg('1m', '>', 10)] }, clear: value('<', t - 20) },
      // a 2 s average high for 500 ms
      { ...base, if: avg('2s', '>', 50 + (j % 10)), for: '500ms', clear: avg('2s', '<', 40) },
      // low during the (always open) hours, with a cooldown
      { ...base, if: { all: [value('<', 100 - t), { time: { between: ['00:00', '00:00'], days } }] }, cooldown: '1s' },
      // the last second's minimum low for 200 ms
      { ...base, if: min('<', 20), for: '200ms', clear: min('>', 40), cooldown: '2s' },
    ];
    rules.push(kinds[j % 4] as RuleConfig);
  }
  for (let k = 0; k < PROBE_RULES; k++) {
    const then = [{ write: { device: 'act', point: ACT_POINT, value: k % 2 === 0 } }];
    rules.push({ id: `probe-${k}`, enabled: true, when: { reading: { device: PROBE_DEVICE, point: `t${k}` } }, then });
  }
  return rules;
}

export function siteConfig(modbusPort: number, dataDir: string, rules: RuleConfig[]): Record<string, unknown> {
  const line = { id: 'act-line', transport: 'tcp', host: LOOPBACK, port: modbusPort, timeoutMs: 1000, retries: 0 };
  const coil = { name: ACT_POINT, table: 'coil', address: RELAY_COIL, type: 'bool', writable: true };
  const drivers = { mqtt: { enabled: true, host: LOOPBACK, port: 0, maxMessagesPerSecond: 0 }, modbus: { enabled: true, lines: [line] } };
  // The actuator is polled once a minute, so the line is free for the writes being measured.
  const devices = [{ id: 'act', zone: ZONE, modbus: { line: 'act-line', unit: 1, pollMs: 60_000, points: [coil] } }];
  return benchSite(dataDir, { timezone: TIMEZONE, drivers, devices, rules });
}

// Message m goes to device s-(m mod 100) with batch/10 rows of all points, timestamps spread back to
// that device's previous message: every series gets rate/1000 readings/s in time order, on a sine.
export class ReadingStream {
  readonly rows: number;
  readonly messagesPerSec: number;
  private readonly rowSpacingMs: number;
  constructor(opts: { rate: number; batch: number }) {
    this.rows = opts.batch / POINTS;
    this.messagesPerSec = opts.rate / opts.batch;
    this.rowSpacingMs = (DEVICES * 1000) / this.messagesPerSec / this.rows;
  }
  /** Rows of message m sent at `now` (ms since the epoch): { p0…p9, ts } objects. */
  private rowsOf(m: number, now: number): { device: string; rows: Array<Record<string, number>> } {
    const d = m % DEVICES;
    const rows: Array<Record<string, number>> = [];
    for (let r = 0; r < this.rows; r++) {
      const ts = Math.round(now - (this.rows - 1 - r) * this.rowSpacingMs);
      const row: Record<string, number> = {};
      for (let p = 0; p < POINTS; p++) {
        const phase = (((d * 7 + p * 13) % 100) / 100) * 2 * Math.PI;
        row[pointName(p)] = Math.round((50 + 45 * Math.sin((2 * Math.PI * ts) / WAVE_MS + phase)) * 100) / 100;
      }
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
    return rows.flatMap((row) =>
      Array.from({ length: POINTS }, (_, p) => ({ ts: row.ts, device, point: pointName(p), value: row[pointName(p)] })),
    );
  }
}

// Calls `send(m)` for message m at `perSec` messages/s (a 2 ms timer sends what is due; `ready()` false
// defers). Messages over 100 ms late are skipped and counted: a slow consumer shows as a lower rate, not a burst.
export class Pacer {
  sent = 0;
  skipped = 0;
  private timer: NodeJS.Timeout | null = null;
  private due = 0;
  private readonly maxBehind: number;
  constructor(
    private readonly perSec: number,
    private readonly send: (m: number) => void,
    private readonly ready: () => boolean = () => true,
  ) {
    this.maxBehind = Math.max(1, Math.ceil(perSec / 10));
  }

  start(): void {
    const t0 = performance.now();
    this.timer = setInterval(() => {
      const target = Math.floor(((performance.now() - t0) * this.perSec) / 1000);
      if (target - this.due > this.maxBehind) {
        this.skipped += target - this.due - this.maxBehind;
        this.due = target - this.maxBehind;
      }
      for (; this.due < target && this.ready(); this.due++) this.send(this.sent++);
    }, 2);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
