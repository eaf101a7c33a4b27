// Runs the site's rules off the main thread. Rules are split into shards, each shard a
// single-thread Piscina pool holding that shard's engine state (windows, `for` timers,
// hysteresis). Readings and events are batched per event-loop turn and sent to every
// shard; firings come back and are acted on here (actions.ts). Shard state is
// snapshotted to DuckDB every few seconds and on stop, and restored at start and after a
// worker crash, so a restart or a crashed worker loses no more than the last interval.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import type { OutpostEvent, Reading } from '../contract/types.js';
import type { DeviceInfo } from './devices.js';
import type { Fact, Firing } from './engine.js';
import { Scheduler, engineRule } from './schedule.js';
import type { RuleConfig } from '../../config/rules-schema.js';
import type { WorkerResult, WorkerTask } from './worker.js';
import { withConnection } from '../kernel/duckdb.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
const MAX_BATCH = 2000;
const MAX_PENDING_FACTS = 50_000;
const SNAPSHOT_EVERY_MS = 5000;
const TICK_EVERY_MS = 1000;

interface Shard {
  index: number;
  pool: Piscina<WorkerTask, WorkerResult>;
  rules: RuleConfig[];
  /** Last snapshot, as JSON. */
  state: string | null;
}

export interface RulesHostOptions {
  rules: readonly RuleConfig[];
  timezone: string;
  site: string;
  devices?: DeviceInfo[];
  shards?: number;
}

export class RulesHost {
  private readonly shards: Shard[] = [];
  private pending: Fact[] = [];
  private flushScheduled = false;
  private inFlight: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private scheduler: Scheduler | null = null;

  constructor(
    private readonly opts: RulesHostOptions,
    private readonly db: DuckDBInstance,
    private readonly onFirings: (firings: Firing[]) => void,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get ruleCount(): number {
    return this.opts.rules.length;
  }

  async start(): Promise<void> {
    const enabled = this.opts.rules.filter((r) => r.enabled);
    if (enabled.length === 0) return;
    this.scheduler = new Scheduler(enabled, this.opts.timezone);
    const rules = enabled.map(engineRule);
    const count = Math.max(1, Math.min(this.opts.shards ?? Math.max(1, availableParallelism() - 1), rules.length));
    await withConnection(this.db, (c) => c.run('CREATE TABLE IF NOT EXISTS rule_state (shard INTEGER, state JSON, saved_at TIMESTAMPTZ)'));
    const saved = await this.loadStates();
    for (let i = 0; i < count; i++) {
      const pool = new Piscina<WorkerTask, WorkerResult>({ filename: WORKER, minThreads: 1, maxThreads: 1, idleTimeout: 2 ** 31 - 1 });
      const shard: Shard = { index: i, pool, rules: rules.filter((_, j) => j % count === i), state: null };
      this.shards.push(shard);
      await this.init(shard, saved);
      // Until the first snapshot, a replaced worker restarts from what was saved.
      const first = await this.run(shard, { op: 'snapshot' });
      if (first && 'state' in first) shard.state = first.state;
    }
    this.timers.push(setInterval(() => this.enqueueTick(), TICK_EVERY_MS));
    this.timers.push(
      setInterval(() => void this.persist().catch((err: Error) => this.log.warn({ err }, 'rule state not saved')), SNAPSHOT_EVERY_MS),
    );
    for (const t of this.timers) t.unref();
    this.log.info({ rules: rules.length, shards: count }, 'rules running in worker threads');
  }

  /** Called for every accepted reading batch and event (before commit: fastest reaction). */
  offerReadings(readings: readonly Reading[]): void {
    if (this.shards.length === 0) return;
    for (const reading of readings) this.pending.push({ kind: 'reading', reading });
    this.scheduleFlush();
  }

  offerEvent(event: OutpostEvent): void {
    if (this.shards.length === 0) return;
    this.pending.push({ kind: 'event', event });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.pending.length > MAX_PENDING_FACTS) {
      // Bounded: when the workers fall this far behind, the oldest facts are dropped.
      const drop = this.pending.length - MAX_PENDING_FACTS;
      this.pending.splice(0, drop);
      this.metrics.rejects.inc({ driver: 'rules', reason: 'rules_backlog' }, drop);
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.inFlight = this.inFlight.then(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0 && !this.stopped) {
      const facts = this.pending.splice(0, MAX_BATCH);
      const started = performance.now();
      await this.broadcast({ op: 'process', facts });
      this.metrics.rulesBatchSeconds.observe((performance.now() - started) / 1000);
    }
  }

  private enqueueTick(): void {
    if (this.stopped) return;
    const now = Date.now();
    const due = this.scheduler?.due(now, this.opts.site) ?? [];
    if (due.length > 0) for (const event of due) this.offerEvent(event);
    this.inFlight = this.inFlight.then(() => this.broadcast({ op: 'tick', now }));
  }

  private async broadcast(task: WorkerTask): Promise<void> {
    const results = await Promise.all(this.shards.map((s) => this.run(s, task)));
    // A shard that failed every attempt skipped these facts: count them, do not hide it.
    const failed = results.filter((r) => r === null).length;
    if (failed > 0 && task.op === 'process')
      this.metrics.rejects.inc({ driver: 'rules', reason: 'rules_worker_failed' }, task.facts.length * failed);
    const firings = results.flatMap((r) => (r && 'firings' in r ? r.firings : []));
    for (const r of results) if (r && 'evaluations' in r) this.metrics.rulesEvaluations.inc(r.evaluations);
    if (firings.length > 0) {
      firings.sort((a, b) => a.ts - b.ts);
      this.onFirings(firings);
    }
  }

  /** Runs a task on a shard, re-initialising a worker that crashed or was replaced. */
  private async run(shard: Shard, task: WorkerTask): Promise<WorkerResult | null> {
    for (let attempt = 0; attempt < 3; attempt++) {
      let result: WorkerResult;
      try {
        result = await shard.pool.run(task);
      } catch (err) {
        this.metrics.rulesWorkerRestarts.inc();
        this.log.error({ shard: shard.index, err }, 'rules worker failed; restoring it from the last snapshot');
        continue; // Piscina starts a fresh worker; it will answer needsInit
      }
      if (!('needsInit' in result) || !result.needsInit) return result;
      await this.init(shard, shard.state ? [shard.state] : []);
    }
    return null;
  }

  private async init(shard: Shard, states: string[]): Promise<void> {
    await shard.pool.run({ op: 'init', rules: shard.rules, timezone: this.opts.timezone, devices: this.opts.devices ?? [], states });
  }

  /** Test hook: kills one shard's worker thread. */
  async crashWorker(shard = 0): Promise<void> {
    await this.shards[shard]?.pool.run({ op: 'crash' }).catch(() => undefined);
  }

  /** Snapshots every shard and stores the states in DuckDB. */
  async persist(): Promise<void> {
    const states: string[] = [];
    for (const shard of this.shards) {
      const r = await this.run(shard, { op: 'snapshot' });
      if (r && 'state' in r) {
        shard.state = r.state;
        states.push(r.state);
      }
    }
    if (states.length === 0) return;
    await withConnection(this.db, async (c) => {
      await c.run('BEGIN TRANSACTION');
      await c.run('DELETE FROM rule_state');
      for (const [i, s] of states.entries()) await c.run('INSERT INTO rule_state VALUES ($1, $2::JSON, now())', [i, s]);
      await c.run('COMMIT');
    });
  }

  private async loadStates(): Promise<string[]> {
    const rows = await withConnection(this.db, async (c) =>
      (await c.runAndReadAll('SELECT state::VARCHAR FROM rule_state ORDER BY shard')).getRows(),
    );
    return rows.map((r) => r[0] as string);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.inFlight.catch(() => undefined);
    await this.flush().catch(() => undefined);
    await this.persist().catch((err: Error) => this.log.warn({ err }, 'rule state not saved on stop'));
    this.stopped = true;
    await Promise.all(this.shards.map((s) => s.pool.destroy()));
  }
}
