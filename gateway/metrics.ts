// Prometheus metrics for one gateway instance (its own registry, so tests can run several).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly readingsReceived = new Counter({
    name: 'outpost_readings_received_total',
    help: 'Readings accepted from drivers, before commit',
    labelNames: ['driver'] as const,
    registers: [this.registry],
  });
  readonly readingsCommitted = new Counter({
    name: 'outpost_readings_committed_total',
    help: 'Readings durably committed to DuckDB',
    registers: [this.registry],
  });
  readonly eventsCommitted = new Counter({
    name: 'outpost_events_committed_total',
    help: 'Events durably committed to DuckDB',
    registers: [this.registry],
  });
  readonly rejects = new Counter({
    name: 'outpost_rejects_total',
    help: 'Input dropped, by driver and reason',
    labelNames: ['driver', 'reason'] as const,
    registers: [this.registry],
  });
  readonly commitLatency = new Histogram({
    name: 'outpost_commit_latency_seconds',
    help: 'Time from a row being queued to its commit',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly commitFailures = new Counter({
    name: 'outpost_commit_failures_total',
    help: 'Group commits that failed and were retried',
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'outpost_store_queue_rows',
    help: 'Rows waiting for the next group commit',
    registers: [this.registry],
  });
  readonly retentionDropped = new Counter({
    name: 'outpost_retention_rows_dropped_total',
    help: 'Rows deleted by retention, by table and reason (age, disk)',
    labelNames: ['table', 'reason'] as const,
    registers: [this.registry],
  });
  readonly driverRestarts = new Counter({
    name: 'outpost_driver_restarts_total',
    help: 'Driver restarts after a crash',
    labelNames: ['driver'] as const,
    registers: [this.registry],
  });
  readonly driverUp = new Gauge({
    name: 'outpost_driver_up',
    help: '1 while a driver is running',
    labelNames: ['driver'] as const,
    registers: [this.registry],
  });
  readonly mqttClients = new Gauge({
    name: 'outpost_mqtt_clients',
    help: 'Connected MQTT clients',
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'outpost_auth_failures_total',
    help: 'Refused credentials or ACL checks, by surface and reason',
    labelNames: ['surface', 'reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    // process_resident_memory_bytes (RSS), CPU, event-loop lag, heap.
    collectDefaultMetrics({ register: this.registry });
  }
}
