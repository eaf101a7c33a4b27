// Alerts with a lifecycle: open → acknowledged → resolved. A rule (or anything else)
// raises an alert under a de-duplication `key`: while an alert with that key is open or
// acknowledged, raising again only bumps its count and last time, so a flapping sensor
// makes one alert, not hundreds. After it is resolved, the next raise opens a new one.
//
// State lives in the `alerts` table; each change of state (not each repeat) is also an
// event (`alert.triggered`, `alert.acknowledged`, `alert.resolved`), which is the audit
// trail and what retention ages out. Resolved alerts stay in the table; at most
// MAX_ACTIVE_ALERTS may be open or acknowledged at once, past that `raise` throws an
// AlertError (503) instead of growing without bound.
import { randomUUID } from 'node:crypto';
import { DuckDBTimestampTZValue, type DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import { SEVERITIES, type Severity } from '../config/rules-schema.js';
import { withConnection } from './kernel/duckdb.js';

export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];
const MAX_ACTIVE_ALERTS = 10_000;

export interface Alert {
  id: string;
  key: string;
  rule: string | null;
  severity: Severity;
  status: AlertStatus;
  message: string;
  data: unknown;
  openedAt: string;
  lastAt: string;
  count: number;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  resolvedBy: string | null;
  note: string | null;
}

export interface RaiseInput {
  key: string;
  rule?: string | null;
  severity: Severity;
  message: string;
  data?: unknown;
}

export interface AlertFilter {
  status?: AlertStatus;
  severity?: Severity;
  limit: number;
}

/** A refused alert operation; `statusCode` is what the API answers (the error handler reads it). */
export class AlertError extends Error {
  constructor(
    readonly statusCode: 400 | 404 | 409 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'AlertError';
  }
}

type Emit = (type: string, data: Alert, subject: string) => Promise<void>;

/** Runs tasks with the same key one after another (tasks with other keys run alongside). */
class KeyedSerial {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    // Forget idle keys, so the map holds only keys with work in flight.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

const COLUMNS = `id, key, rule, severity, status, message, data::VARCHAR, epoch_us(opened_at), epoch_us(last_at), count,
  epoch_us(acknowledged_at), acknowledged_by, epoch_us(resolved_at), resolved_by, note`;

const isoUs = (us: DuckDBValue) => (us === null ? null : new Date(Number(us) / 1000).toISOString());

function toAlert(r: DuckDBValue[]): Alert {
  return {
    id: r[0] as string,
    key: r[1] as string,
    rule: r[2] as string | null,
    severity: r[3] as Severity,
    status: r[4] as AlertStatus,
    message: r[5] as string,
    data: r[6] === null ? null : (JSON.parse(r[6] as string) as unknown),
    openedAt: isoUs(r[7])!,
    lastAt: isoUs(r[8])!,
    count: r[9] as number,
    acknowledgedAt: isoUs(r[10]),
    acknowledgedBy: r[11] as string | null,
    resolvedAt: isoUs(r[12]),
    resolvedBy: r[13] as string | null,
    note: r[14] as string | null,
  };
}

export class AlertStore {
  private readonly serial = new KeyedSerial();
  private lastUs = 0;

  constructor(
    private readonly instance: DuckDBInstance,
    private readonly emit: Emit,
    private readonly maxActive = MAX_ACTIVE_ALERTS,
  ) {}

  // Strictly increasing within the process, so "newest first" is stable even for alerts
  // opened in the same millisecond (a microsecond nudge at most).
  private now(): DuckDBTimestampTZValue {
    this.lastUs = Math.max(Date.now() * 1000, this.lastUs + 1);
    return new DuckDBTimestampTZValue(BigInt(this.lastUs));
  }

  private async query(sql: string, params: DuckDBValue[] = []): Promise<DuckDBValue[][]> {
    return withConnection(this.instance, async (c) => (await c.runAndReadAll(sql, params)).getRows());
  }

  async get(id: string): Promise<Alert | undefined> {
    const rows = await this.query(`SELECT ${COLUMNS} FROM alerts WHERE id = $1`, [id]);
    return rows[0] ? toAlert(rows[0]) : undefined;
  }

  /** Newest (by opening time) first. */
  async list(f: AlertFilter): Promise<Alert[]> {
    const clauses: string[] = [];
    const params: DuckDBValue[] = [];
    if (f.status) clauses.push(`status = $${params.push(f.status)}`);
    if (f.severity) clauses.push(`severity = $${params.push(f.severity)}`);
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    const rows = await this.query(`SELECT ${COLUMNS} FROM alerts ${where} ORDER BY opened_at DESC LIMIT ${Math.trunc(f.limit)}`, params);
    return rows.map(toAlert);
  }

  /**
   * Opens an alert, or — while one with the same key is open or acknowledged — counts a
   * repeat on it (latest message, severity and data win). Raises with one key are
   * serialised, so concurrent raises can never open two alerts for it.
   */
  async raise(input: RaiseInput): Promise<{ alert: Alert; created: boolean }> {
    if (typeof input.key !== 'string' || input.key === '') throw new AlertError(400, 'alert key must be a non-empty string');
    if (!SEVERITIES.includes(input.severity))
      throw new AlertError(400, `alert severity "${String(input.severity)}" must be one of ${SEVERITIES.join(', ')}`);
    const data = input.data === undefined || input.data === null ? null : JSON.stringify(input.data);
    const result = await this.serial.run(input.key, async () => {
      const active = await this.query(`SELECT id FROM alerts WHERE key = $1 AND status <> 'resolved' ORDER BY opened_at DESC LIMIT 1`, [
        input.key,
      ]);
      const now = this.now();
      if (active[0]) {
        const id = active[0][0] as string;
        await this.query(
          `UPDATE alerts SET last_at = $2, count = count + 1, message = $3, severity = $4, data = coalesce($5::JSON, data) WHERE id = $1`,
          [id, now, input.message, input.severity, data],
        );
        return { id, created: false };
      }
      // Active alerts of other keys may be raised alongside, so under a burst of new keys
      // the bound can be overshot by the number of raises in flight — it is a safety cap.
      const [[n]] = (await this.query(`SELECT count(*)::INTEGER FROM alerts WHERE status <> 'resolved'`)) as [[number]];
      if (n >= this.maxActive) {
        throw new AlertError(
          503,
          `too many active alerts (${n} open or acknowledged, limit ${this.maxActive}): resolve some before new ones can open`,
        );
      }
      const id = randomUUID();
      await this.query(
        `INSERT INTO alerts (id, key, rule, severity, status, message, data, opened_at, last_at, count)
         VALUES ($1, $2, $3, $4, 'open', $5, $6::JSON, $7, $7, 1)`,
        [id, input.key, input.rule ?? null, input.severity, input.message, data, now],
      );
      return { id, created: true };
    });
    const alert = (await this.get(result.id))!;
    if (result.created) await this.emit('alert.triggered', alert, alert.id);
    return { alert, created: result.created };
  }

  /** open → acknowledged. 404 for an unknown id, 409 for an alert in any other state. */
  acknowledge(id: string, by: string, note?: string): Promise<Alert> {
    return this.transition(id, 'acknowledged', by, note);
  }

  /** open or acknowledged → resolved. 404 for an unknown id, 409 when already resolved. */
  resolve(id: string, by: string, note?: string): Promise<Alert> {
    return this.transition(id, 'resolved', by, note);
  }

  private async transition(id: string, to: 'acknowledged' | 'resolved', by: string, note: string | undefined): Promise<Alert> {
    const first = await this.get(id);
    if (!first) throw new AlertError(404, `no alert "${id}"`);
    // Under the key's queue, so a concurrent raise (which updates the same row) cannot
    // collide with this update; the state is re-read there.
    const alert = await this.serial.run(first.key, async () => {
      const current = (await this.get(id))!;
      const allowed = to === 'acknowledged' ? current.status === 'open' : current.status !== 'resolved';
      if (!allowed) {
        const need = to === 'acknowledged' ? 'only an open alert can be acknowledged' : 'it is already resolved';
        throw new AlertError(409, `alert "${id}" is ${current.status}: ${need}`);
      }
      const col = to === 'acknowledged' ? 'acknowledged' : 'resolved';
      // A later note replaces an earlier one; no note keeps the earlier one.
      await this.query(`UPDATE alerts SET status = $2, ${col}_at = $3, ${col}_by = $4, note = coalesce($5, note) WHERE id = $1`, [
        id,
        to,
        this.now(),
        by,
        note ?? null,
      ]);
      return (await this.get(id))!;
    });
    await this.emit(`alert.${to}`, alert, alert.id);
    return alert;
  }
}
