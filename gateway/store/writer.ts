// Group-commit writer. Drivers hand over readings/events and get a promise that resolves
// only once those rows are committed (WAL fsynced) — that is what lets the MQTT driver
// send PUBACK after commit without paying one transaction per message.
//
// Policy: an idle writer gathers rows for at most `flushIntervalMs` (less once `flushRows`
// are waiting) and commits. One commit runs at a time; rows arriving meanwhile form the
// next batch, which is committed as soon as the running commit ends — they have already
// waited that long — so under load commits run back to back and batches grow by
// themselves up to flushRows (larger backlogs are cut into flushRows-sized commits so the
// synchronous append never stalls the event loop for long), while a quiet site still
// gets a commit within the interval. The queue holds at
// most `maxQueueRows` rows (waiting + committing): past it `write()` either waits for room
// (bounded by `spaceTimeoutMs`) or fails fast with QueueFullError, as the caller chooses.
import { DuckDBTimestampTZValue, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import type { Bus } from '../bus.js';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import { QueueFullError, StoreClosedError, StoreError } from '../contract/errors.js';
import type { OutpostEvent, Reading } from '../contract/types.js';

export interface WriterOptions {
  flushIntervalMs: number;
  flushRows: number;
  maxQueueRows: number;
  /** How long a `waitForSpace` writer may wait for room before failing. */
  spaceTimeoutMs?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  at: number;
}

class Batch {
  readings: Reading[] = [];
  events: OutpostEvent[] = [];
  waiters: Waiter[] = [];
  firstAt = 0;
  get rows(): number {
    return this.readings.length + this.events.length;
  }
}

export class StoreWriter {
  private batch = new Batch();
  // Batches that reached flushRows while a commit ran: committed in order, one per
  // commit, so no single commit (and its synchronous append) grows past flushRows.
  private readonly sealed: Batch[] = [];
  private sealedRows = 0;
  private inflightRows = 0;
  // Room promised to woken waiters but not yet filled, so two waiters woken by the same
  // commit cannot both take the last free space.
  private reservedRows = 0;
  private readonly spaceQueue: { n: number; grant: () => void }[] = [];
  private committing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readingsApp: DuckDBAppender | null = null;
  private eventsApp: DuckDBAppender | null = null;
  private nextReadingSeq = 1;
  private nextEventSeq = 1;

  private constructor(
    private readonly conn: DuckDBConnection,
    private readonly opts: WriterOptions,
    private readonly metrics: Metrics,
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  static async open(conn: DuckDBConnection, opts: WriterOptions, metrics: Metrics, bus: Bus, log: Logger) {
    const w = new StoreWriter(conn, opts, metrics, bus, log);
    // Resume after the highest seq ever committed, including rows retention deleted.
    const next = async (table: 'readings' | 'events') => {
      const r = await conn.runAndReadAll(
        `SELECT greatest((SELECT coalesce(max(seq), 0) FROM ${table}),
                         (SELECT coalesce(max(value::BIGINT), 0) FROM meta WHERE key = 'seq_high_water_${table}'))::DOUBLE`,
      );
      return (r.getRows()[0][0] as number) + 1;
    };
    w.nextReadingSeq = await next('readings');
    w.nextEventSeq = await next('events');
    return w;
  }

  /** Rows accepted but not yet committed. */
  get queuedRows(): number {
    return this.batch.rows + this.sealedRows + this.inflightRows + this.reservedRows;
  }

  /** The seq the next committed reading/event will get. */
  get nextSeq(): { readings: number; events: number } {
    return { readings: this.nextReadingSeq, events: this.nextEventSeq };
  }

  /**
   * Queues rows and resolves once they are committed. With `waitForSpace` a full queue
   * delays the caller (back-pressure for acknowledged protocols); without it a full
   * queue rejects at once with QueueFullError (lossy sources count the drop).
   */
  async write(readings: readonly Reading[], events: readonly OutpostEvent[] = [], opts: { waitForSpace?: boolean } = {}): Promise<void> {
    return (await this.enqueue(readings, events, opts)).committed;
  }

  /**
   * Like `write`, but resolves as soon as the rows are queued (after waiting for room, if
   * asked); `committed` then resolves on commit. Lets a fire-and-forget source (MQTT QoS0)
   * feel back-pressure from a full queue without waiting for every commit.
   */
  async enqueue(
    readings: readonly Reading[],
    events: readonly OutpostEvent[] = [],
    opts: { waitForSpace?: boolean } = {},
  ): Promise<{ committed: Promise<void> }> {
    if (this.closed) throw new StoreClosedError();
    const n = readings.length + events.length;
    if (n === 0) return { committed: Promise.resolve() };
    if (this.spaceQueue.length > 0 || this.queuedRows + n > this.opts.maxQueueRows) {
      if (!opts.waitForSpace || n > this.opts.maxQueueRows) throw new QueueFullError(this.queuedRows, this.opts.maxQueueRows);
      await this.waitForSpace(n); // reserves n rows on success
      if (!this.closed) this.reservedRows -= n;
      else throw new StoreClosedError();
    }
    if (this.batch.rows >= this.opts.flushRows) {
      this.sealed.push(this.batch);
      this.sealedRows += this.batch.rows;
      this.batch = new Batch();
    }
    const b = this.batch;
    if (b.rows === 0) b.firstAt = performance.now();
    for (const r of readings) b.readings.push(r);
    for (const e of events) b.events.push(e);
    this.metrics.queueDepth.set(this.queuedRows);
    const committed = new Promise<void>((resolve, reject) => b.waiters.push({ resolve, reject, at: performance.now() }));
    this.schedule();
    return { committed };
  }

  /** Commits everything queued so far. */
  async flush(): Promise<void> {
    while (this.committing || this.sealed.length > 0 || this.batch.rows > 0) {
      if (!this.committing) this.startCommit();
      await this.committing;
    }
  }

  /** Stops accepting rows, commits what is queued, and releases the appenders. */
  async close(): Promise<void> {
    this.closed = true;
    this.grantSpace();
    await this.flush();
    this.readingsApp?.closeSync();
    this.eventsApp?.closeSync();
    this.readingsApp = this.eventsApp = null;
  }

  /** Waits, first come first served, until n rows fit; the room is reserved on grant. */
  private waitForSpace(n: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = {
        n,
        grant: () => {
          clearTimeout(timeout);
          resolve();
        },
      };
      const timeout = setTimeout(() => {
        const i = this.spaceQueue.indexOf(entry);
        if (i >= 0) this.spaceQueue.splice(i, 1);
        reject(new QueueFullError(this.queuedRows, this.opts.maxQueueRows));
        this.grantSpace();
      }, this.opts.spaceTimeoutMs ?? 30_000);
      this.spaceQueue.push(entry);
    });
  }

  private grantSpace(): void {
    while (this.spaceQueue.length > 0) {
      const head = this.spaceQueue[0];
      if (!this.closed && this.queuedRows + head.n > this.opts.maxQueueRows) return;
      this.spaceQueue.shift();
      if (this.closed) {
        head.grant(); // write() then throws StoreClosedError
        continue;
      }
      this.reservedRows += head.n;
      head.grant();
    }
  }

  private schedule(): void {
    if (this.committing) return; // the running commit reschedules when it ends
    if (this.sealed.length > 0 || this.batch.rows >= this.opts.flushRows) return this.startCommit();
    if (!this.timer) {
      const wait = Math.max(0, this.opts.flushIntervalMs - (performance.now() - this.batch.firstAt));
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.committing && this.batch.rows > 0) this.startCommit();
      }, wait);
    }
  }

  private startCommit(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let b = this.sealed.shift();
    if (b) this.sealedRows -= b.rows;
    else {
      b = this.batch;
      this.batch = new Batch();
    }
    this.inflightRows = b.rows;
    this.committing = this.commit(b).finally(() => {
      this.committing = null;
      this.inflightRows = 0;
      this.metrics.queueDepth.set(this.queuedRows);
      this.grantSpace();
      if (this.sealed.length > 0 || this.batch.rows > 0) this.startCommit();
    });
  }

  private async commit(b: Batch): Promise<void> {
    const seqR = this.nextReadingSeq;
    const seqE = this.nextEventSeq;
    try {
      await this.conn.run('BEGIN TRANSACTION');
      if (b.readings.length > 0) appendReadings((this.readingsApp ??= await this.conn.createAppender('readings')), b.readings, seqR);
      if (b.events.length > 0) appendEvents((this.eventsApp ??= await this.conn.createAppender('events')), b.events, seqE);
      this.readingsApp?.flushSync();
      this.eventsApp?.flushSync();
      await this.conn.run('COMMIT');
    } catch (err) {
      await this.recover();
      const error = new StoreError(`commit of ${b.rows} rows failed: ${(err as Error).message}`, { cause: err });
      this.metrics.commitFailures.inc();
      this.log.error({ err: error }, 'store commit failed; rows not acknowledged');
      for (const w of b.waiters) w.reject(error);
      return;
    }
    // Seq numbers are only consumed by a successful commit, so they stay gap-free.
    this.nextReadingSeq = seqR + b.readings.length;
    this.nextEventSeq = seqE + b.events.length;
    const now = performance.now();
    this.metrics.readingsCommitted.inc(b.readings.length);
    this.metrics.eventsCommitted.inc(b.events.length);
    for (const w of b.waiters) {
      this.metrics.commitLatency.observe((now - w.at) / 1000);
      w.resolve();
    }
    this.bus.emit('committed', b.readings, b.events);
  }

  // After a failed commit the appenders may hold half a batch: drop them and roll back.
  private async recover(): Promise<void> {
    for (const app of [this.readingsApp, this.eventsApp]) {
      try {
        app?.clear();
        app?.closeSync();
      } catch {
        /* the appender is being discarded anyway */
      }
    }
    this.readingsApp = this.eventsApp = null;
    try {
      await this.conn.run('ROLLBACK');
    } catch {
      /* no transaction was open */
    }
  }
}

function micros(ms: number): DuckDBTimestampTZValue {
  return new DuckDBTimestampTZValue(BigInt(Math.round(ms * 1000)));
}

function appendReadings(app: DuckDBAppender, rows: readonly Reading[], firstSeq: number): void {
  let seq = firstSeq;
  for (const r of rows) {
    app.appendBigInt(BigInt(seq++));
    app.appendTimestampTZ(micros(r.ts));
    app.appendVarchar(r.device);
    app.appendVarchar(r.point);
    const v = r.value;
    if (typeof v === 'number') {
      // NaN marks "no value" (e.g. a Modbus exception): NULL keeps avg/max meaningful.
      if (Number.isNaN(v)) app.appendNull();
      else app.appendDouble(v);
      app.appendNull();
    } else if (typeof v === 'boolean') {
      app.appendDouble(v ? 1 : 0);
      app.appendVarchar(v ? 'true' : 'false');
    } else {
      app.appendNull();
      app.appendVarchar(v);
    }
    if (r.unit === undefined) app.appendNull();
    else app.appendVarchar(r.unit);
    if (r.quality === undefined) app.appendNull();
    else app.appendVarchar(r.quality);
    app.endRow();
  }
}

function appendEvents(app: DuckDBAppender, rows: readonly OutpostEvent[], firstSeq: number): void {
  let seq = firstSeq;
  for (const e of rows) {
    app.appendBigInt(BigInt(seq++));
    app.appendVarchar(e.id);
    app.appendTimestampTZ(micros(e.ts));
    app.appendVarchar(e.type);
    app.appendVarchar(e.source);
    if (e.subject === undefined) app.appendNull();
    else app.appendVarchar(e.subject);
    if (e.data === undefined) app.appendNull();
    else app.appendVarchar(JSON.stringify(e.data));
    app.endRow();
  }
}
