// Prometheus metrics for one gateway instance (its own registry, so tests can run several):
// the core's own, the uploader's (sync/metrics.ts), and each registered driver's (declared
// by its descriptor, registered whether or not the driver is enabled).
import { DRIVERS } from '../drivers/index.js';
import { syncMetrics } from '../sync/metrics.js';
import type { AnyDriverDescriptor } from './contract/descriptor.js';
import { MetricRegistry } from './kernel/metrics.js';

export class Metrics extends MetricRegistry {
  readonly readingsReceived = this.counter('outpost_readings_received_total', 'Readings accepted from drivers, before commit', ['driver']);
  readonly readingsCommitted = this.counter('outpost_readings_committed_total', 'Readings durably committed to DuckDB');
  readonly eventsCommitted = this.counter('outpost_events_committed_total', 'Events durably committed to DuckDB');
  readonly rejects = this.counter('outpost_rejects_total', 'Input dropped, by driver and reason', ['driver', 'reason']);
  readonly commitFailures = this.counter('outpost_commit_failures_total', 'Group commits that failed (rows not acknowledged)');
  readonly retentionDropped = this.counter(
    'outpost_retention_rows_dropped_total',
    'Rows deleted by retention, by table and reason (age, disk)',
    ['table', 'reason'],
  );
  readonly driverRestarts = this.counter('outpost_driver_restarts_total', 'Driver restarts after a crash', ['driver']);
  readonly authFailures = this.counter('outpost_auth_failures_total', 'Refused credentials or ACL checks, by surface and reason', [
    'surface',
    'reason',
  ]);
  readonly rateLimited = this.counter(
    'outpost_rate_limited_total',
    'Requests refused or slowed by a rate limit, by surface (http, mqtt) and kind',
    ['surface', 'kind'],
  );
  readonly idempotentReplays = this.counter(
    'outpost_http_idempotent_replays_total',
    'Retried API requests answered from their Idempotency-Key',
  );
  readonly sqlQueries = this.counter('outpost_sql_queries_total', 'Admin SQL queries by outcome (ok, refused, error, timeout, busy)', [
    'outcome',
  ]);
  readonly rulesEvaluations = this.counter('outpost_rules_evaluations_total', 'Rule condition evaluations in the worker threads');
  readonly rulesFirings = this.counter('outpost_rules_firings_total', 'Rule firings, by rule', ['rule']);
  readonly rulesActions = this.counter('outpost_rules_actions_total', 'Rule actions, by kind and result', ['kind', 'result']);
  readonly rulesWorkerRestarts = this.counter('outpost_rules_worker_restarts_total', 'Rules worker threads that failed and were restored');
  readonly rulesBatchSeconds = this.histogram(
    'outpost_rules_batch_seconds',
    'Time for the rule shards to evaluate one batch of readings/events',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  );
  readonly queueDepth = this.gauge('outpost_store_queue_rows', 'Rows waiting for the next group commit');
  readonly driverUp = this.gauge('outpost_driver_up', '1 while a driver is running', ['driver']);
  readonly commitLatency = this.histogram(
    'outpost_commit_latency_seconds',
    'Time from a row being queued to its commit',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly webhookDeliveries = this.counter(
    'outpost_webhook_deliveries_total',
    'Webhook delivery outcomes by endpoint and result (delivered, failed_attempt, dead, disabled)',
    ['endpoint', 'result'],
  );
  readonly webhookPending = this.gauge('outpost_webhook_pending', 'Webhook deliveries waiting to be sent, by endpoint', ['endpoint']);
  readonly sync = syncMetrics(this);
  private readonly ofDrivers = new Map<string, unknown>((DRIVERS as readonly AnyDriverDescriptor[]).map((d) => [d.name, d.metrics(this)]));

  /** A registered driver's own metrics (its descriptor's `metrics`). */
  forDriver(name: string): unknown {
    return this.ofDrivers.get(name);
  }

  /** The same, typed by the driver's descriptor. */
  of<M>(d: { name: string; metrics(f: MetricRegistry): M }): M {
    return this.ofDrivers.get(d.name) as M;
  }
}
