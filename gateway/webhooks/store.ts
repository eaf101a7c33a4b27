// The webhook_deliveries table (gateway/store/db.ts): every delivery is a row before its
// first attempt; its state moves pending → delivered, or pending → dead (the DLQ).
import { listValue, type DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import type { OutpostEvent } from '../contract/types.js';
import { EVENT_SELECT, eventFromRow } from '../store/queries.js';
import { withConnection } from '../kernel/duckdb.js';

export type DeliveryState = 'pending' | 'delivered' | 'dead';

/** A delivery without its payload (the payload is read only when it is sent). */
export interface Delivery {
  id: string;
  seq: number;
  endpoint: string;
  eventId: string;
  subject: string;
  attempts: number;
  nextAt: number;
  state: DeliveryState;
  lastError: string | null;
  createdAt: number;
}

export interface NewDelivery {
  id: string;
  seq: number;
  endpoint: string;
  eventId: string;
  subject: string;
  payload: string;
  createdAt: number;
}

const COLS = `id, seq::DOUBLE, endpoint, event_id, subject, attempts, epoch_ms(next_at)::DOUBLE, state, last_error,
              epoch_ms(created_at)::DOUBLE`;
const ts = (n: number) => `to_timestamp($${n}::DOUBLE / 1000)`;

function toDelivery(r: DuckDBValue[]): Delivery {
  return {
    id: r[0] as string,
    seq: r[1] as number,
    endpoint: r[2] as string,
    eventId: r[3] as string,
    subject: r[4] as string,
    attempts: r[5] as number,
    nextAt: r[6] as number,
    state: r[7] as DeliveryState,
    lastError: r[8] as string | null,
    createdAt: r[9] as number,
  };
}

export class DeliveryStore {
  constructor(private readonly instance: DuckDBInstance) {}

  private async rows(sql: string, params: DuckDBValue[] = []): Promise<DuckDBValue[][]> {
    return withConnection(this.instance, async (c) => (await c.runAndReadAll(sql, params)).getRows());
  }

  private async run(sql: string, params: DuckDBValue[] = []): Promise<number> {
    return withConnection(this.instance, async (c) => (await c.run(sql, params)).rowsChanged);
  }

  async maxSeq(): Promise<number> {
    const [r] = await this.rows('SELECT coalesce(max(seq), 0)::DOUBLE FROM webhook_deliveries');
    return (r?.[0] as number | undefined) ?? 0;
  }

  /**
   * The highest events seq whose deliveries are recorded (`meta.webhooks_events_seq`); null
   * before the first start with endpoints. Events past it are caught up at start: those a
   * crash cut off between their commit and their deliveries, and the store's final flush.
   */
  async eventsMark(): Promise<number | null> {
    const [r] = await this.rows(`SELECT value::BIGINT::DOUBLE FROM meta WHERE key = 'webhooks_events_seq'`);
    return r ? (r[0] as number) : null;
  }

  async setEventsMarkToNow(): Promise<void> {
    await this.run(
      `INSERT INTO meta SELECT 'webhooks_events_seq', coalesce(max(seq), 0)::VARCHAR FROM events ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    );
  }

  /** Committed events after `mark`, oldest first, and the (event, endpoint) pairs already recorded. */
  async eventsAfter(mark: number, limit: number): Promise<{ events: (OutpostEvent & { seq: number })[]; recorded: Set<string> }> {
    const rows = await this.rows(`SELECT ${EVENT_SELECT} FROM events WHERE seq > $1 ORDER BY seq LIMIT ${limit}`, [mark]);
    const events = rows.map(eventFromRow);
    const ids = events.map((e) => e.id);
    const done = ids.length
      ? await this.rows(`SELECT event_id, endpoint FROM webhook_deliveries WHERE event_id IN (SELECT unnest($1::VARCHAR[]))`, [
          listValue(ids),
        ])
      : [];
    return { events, recorded: new Set(done.map((r) => `${r[0] as string} ${r[1] as string}`)) };
  }

  /** Stored events to deliver again (oldest first): a time range and optional type glob and subject. */
  async eventsBetween(f: { since: number; until: number; type?: string; subject?: string; limit: number }): Promise<OutpostEvent[]> {
    const where = ['time >= make_timestamp($1::BIGINT * 1000)', 'time < make_timestamp($2::BIGINT * 1000)'];
    const params: DuckDBValue[] = [f.since, f.until];
    if (f.type !== undefined) {
      params.push(f.type.replaceAll('*', '%'));
      where.push(`type LIKE $${params.length}`);
    }
    if (f.subject !== undefined) {
      params.push(f.subject);
      where.push(`subject = $${params.length}`);
    }
    const rows = await this.rows(`SELECT ${EVENT_SELECT} FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ${f.limit}`, params);
    return rows.map(eventFromRow);
  }

  /** Written in one transaction, before any attempt; with the events mark when they come from committed events. */
  async insert(ds: readonly NewDelivery[], eventIds: readonly string[] = [], replay = false): Promise<Set<string>> {
    const inserted = new Set<string>();
    if (ds.length === 0 && eventIds.length === 0) return inserted;
    await withConnection(this.instance, async (c) => {
      await c.run('BEGIN');
      try {
        if (eventIds.length > 0) {
          await c.run(
            `INSERT INTO meta SELECT 'webhooks_events_seq', max(seq)::VARCHAR FROM events WHERE id IN (SELECT unnest($1::VARCHAR[])) HAVING max(seq) IS NOT NULL
             ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value::BIGINT, excluded.value::BIGINT)::VARCHAR`,
            [listValue([...eventIds])],
          );
        }
        for (const d of ds) {
          // One delivery per event and endpoint, whichever path (live or catch-up) records it first.
          const r = await c.run(
            `INSERT INTO webhook_deliveries SELECT $1, $2, $3, $4, $5, $6::JSON, 0, ${ts(7)}, 'pending', NULL, ${ts(7)}, ${ts(7)}
             WHERE $8 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE event_id = $4 AND endpoint = $3)`,
            [d.id, d.seq, d.endpoint, d.eventId, d.subject, d.payload, d.createdAt, replay],
          );
          if (r.rowsChanged > 0) inserted.add(d.id);
        }
        await c.run('COMMIT');
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
    return inserted;
  }

  async pending(): Promise<Delivery[]> {
    return (await this.rows(`SELECT ${COLS} FROM webhook_deliveries WHERE state = 'pending' ORDER BY seq`)).map(toDelivery);
  }

  async payload(id: string): Promise<string | undefined> {
    const [r] = await this.rows('SELECT payload::VARCHAR FROM webhook_deliveries WHERE id = $1', [id]);
    return r?.[0] as string | undefined;
  }

  async get(id: string): Promise<Delivery | undefined> {
    const [r] = await this.rows(`SELECT ${COLS} FROM webhook_deliveries WHERE id = $1`, [id]);
    return r ? toDelivery(r) : undefined;
  }

  /** Marks deliveries delivered in one transaction (one commit for a burst of successes). */
  async markDelivered(batch: readonly { id: string; attempts: number; at: number }[]): Promise<void> {
    if (batch.length === 0) return;
    await withConnection(this.instance, async (c) => {
      await c.run('BEGIN');
      try {
        for (const d of batch) {
          await c.run(
            `UPDATE webhook_deliveries SET state = 'delivered', attempts = $2, next_at = ${ts(3)}, last_error = NULL, updated_at = now() WHERE id = $1`,
            [d.id, d.attempts, d.at],
          );
        }
        await c.run('COMMIT');
      } catch (err) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async update(id: string, state: DeliveryState, attempts: number, nextAt: number, lastError: string | null): Promise<void> {
    await this.run(
      `UPDATE webhook_deliveries SET state = $2, attempts = $3, next_at = ${ts(4)}, last_error = $5, updated_at = now() WHERE id = $1`,
      [id, state, attempts, nextAt, lastError],
    );
  }

  async dead(limit: number, endpoint?: string): Promise<Delivery[]> {
    const where = endpoint === undefined ? '' : 'AND endpoint = $1';
    const sql = `SELECT ${COLS} FROM webhook_deliveries WHERE state = 'dead' ${where} ORDER BY seq DESC LIMIT ${Math.trunc(limit)}`;
    return (await this.rows(sql, endpoint === undefined ? [] : [endpoint])).map(toDelivery);
  }

  /** Deletes a dead delivery; false if there is none with that id. */
  async drop(id: string): Promise<boolean> {
    return (await this.run(`DELETE FROM webhook_deliveries WHERE id = $1 AND state = 'dead'`, [id])) > 0;
  }

  /** Keeps the table bounded: delivered rows for `keepDeliveredMs`, the newest `maxDead` dead rows per endpoint. */
  async prune(keepDeliveredMs: number, maxDead: number, now: number): Promise<void> {
    await this.run(`DELETE FROM webhook_deliveries WHERE state = 'delivered' AND updated_at < ${ts(1)}`, [now - keepDeliveredMs]);
    await this.run(
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY endpoint ORDER BY seq DESC) AS n
                         FROM webhook_deliveries WHERE state = 'dead') WHERE n > $1)`,
      [maxDead],
    );
  }
}
