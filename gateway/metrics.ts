// Prometheus metrics for one gateway instance (its own registry, so tests can run several).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []) {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []) {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  readonly readingsReceived = this.counter('outpost_readings_received_total', 'Readings accepted from drivers, before commit', ['driver']);
  readonly readingsCommitted = this.counter('outpost_readings_committed_total', 'Readings durably committed to DuckDB');
  readonly eventsCommitted = this.counter('outpost_events_committed_total', 'Events durably committed to DuckDB');
  readonly rejects = this.counter('outpost_rejects_total', 'Input dropped, by driver and reason', ['driver', 'reason']);
  readonly commitFailures = this.counter('outpost_commit_failures_total', 'Group commits that failed (rows not acknowledged)');
  readonly retentionDropped = this.counter('outpost_retention_rows_dropped_total', 'Rows deleted by retention, by table and reason (age, disk)', [
    'table',
    'reason',
  ]);
  readonly driverRestarts = this.counter('outpost_driver_restarts_total', 'Driver restarts after a crash', ['driver']);
  readonly authFailures = this.counter('outpost_auth_failures_total', 'Refused credentials or ACL checks, by surface and reason', [
    'surface',
    'reason',
  ]);
  readonly rateLimited = this.counter('outpost_rate_limited_total', 'Requests refused or slowed by a rate limit, by surface (http, mqtt) and kind', [
    'surface',
    'kind',
  ]);
  readonly idempotentReplays = this.counter('outpost_http_idempotent_replays_total', 'Retried API requests answered from their Idempotency-Key');
  readonly sqlQueries = this.counter('outpost_sql_queries_total', 'Admin SQL queries by outcome (ok, refused, error, timeout, busy)', ['outcome']);
  readonly mqttRefusedConnections = this.counter('outpost_mqtt_refused_connections_total', 'MQTT connections refused by a limit, by reason', ['reason']);
  readonly modbusRequests = this.counter('outpost_modbus_requests_total', 'Modbus requests by line and result (ok, exception, timeout, ...)', [
    'line',
    'result',
  ]);
  readonly modbusFrameErrors = this.counter('outpost_modbus_frame_errors_total', 'Garbled or unexpected Modbus replies, by reason (bad_crc, short_frame, ...)', [
    'line',
    'reason',
  ]);
  readonly modbusPollOverruns = this.counter('outpost_modbus_poll_overruns_total', 'Polls skipped because the previous one was still queued', [
    'device',
  ]);
  readonly rulesEvaluations = this.counter('outpost_rules_evaluations_total', 'Rule condition evaluations in the worker threads');
  readonly rulesFirings = this.counter('outpost_rules_firings_total', 'Rule firings, by rule', ['rule']);
  readonly rulesActions = this.counter('outpost_rules_actions_total', 'Rule actions, by kind and result', ['kind', 'result']);
  readonly rulesWorkerRestarts = this.counter('outpost_rules_worker_restarts_total', 'Rules worker threads that failed and were restored');
  readonly rulesBatchSeconds = new Histogram({
    name: 'outpost_rules_batch_seconds',
    help: 'Time for the rule shards to evaluate one batch of readings/events',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });
  readonly syncBatches = this.counter('outpost_sync_batches_total', 'Upload batches by stream and result (ok, duplicate, error)', ['stream', 'result']);
  readonly syncRows = this.counter('outpost_sync_rows_total', 'Rows acknowledged by the cloud, by stream', ['stream']);
  readonly syncBytes = this.counter('outpost_sync_bytes_total', 'Batch bytes sent (Parquet bodies, retries included), by stream', ['stream']);
  readonly syncCommands = this.counter('outpost_sync_commands_total', 'Cloud commands applied, by kind and result', ['kind', 'result']);
  readonly syncBacklogRows = this.gauge('outpost_sync_backlog_rows', 'Rows not yet acknowledged by the cloud', ['stream']);
  readonly syncBacklogBytes = this.gauge('outpost_sync_backlog_bytes', 'Approximate store bytes of the unsent rows', ['stream']);
  readonly syncOldestUnsent = this.gauge('outpost_sync_oldest_unsent_seconds', 'Age of the oldest unsent row (0: none)', ['stream']);
  readonly syncDropped = this.gauge('outpost_sync_dropped_rows', 'Unsent rows deleted by retention (disk quota or age) since the store was created', ['stream']);
  readonly syncCircuit = this.gauge('outpost_sync_circuit_state', 'Uplink circuit: 0 closed (healthy), 1 half-open (probing), 2 open (cloud unreachable)');
  readonly syncLastSuccess = this.gauge('outpost_sync_last_success_timestamp_seconds', 'When the cloud last answered an upload or poll');
  readonly syncConsecutiveFailures = this.gauge('outpost_sync_consecutive_failures', 'Failed sync calls since the last success');
  readonly queueDepth = this.gauge('outpost_store_queue_rows', 'Rows waiting for the next group commit');
  readonly driverUp = this.gauge('outpost_driver_up', '1 while a driver is running', ['driver']);
  readonly mqttClients = this.gauge('outpost_mqtt_clients', 'Connected MQTT clients');
  readonly commitLatency = new Histogram({
    name: 'outpost_commit_latency_seconds',
    help: 'Time from a row being queued to its commit',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  // Camera capture (drivers/camera/capture.ts); the detector pool incs framesDropped.
  readonly cameraFrames = this.counter('outpost_camera_frames_total', 'Letterboxed frames delivered by capture, by camera', ['camera']);
  readonly cameraFps = this.gauge('outpost_camera_fps', 'Frames per second delivered over the last 5 s, by camera', ['camera']);
  readonly cameraFrameLatency = new Histogram({
    name: 'outpost_camera_frame_latency_seconds',
    help: "Time from a frame's first byte on ffmpeg's stdout to its onFrame call (pipe transfer plus event-loop delay; excludes network and decode)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly cameraReconnects = this.counter('outpost_camera_reconnects_total', 'Capture restarts, by camera and reason (exit, stall, error)', ['camera', 'reason']);
  readonly cameraUp = this.gauge('outpost_camera_up', '1 while frames flow from a camera', ['camera']);
  readonly cameraFramesDropped = this.counter('outpost_camera_frames_dropped_total', 'Frames dropped before detection, by camera and reason', [
    'camera',
    'reason',
  ]);

  constructor() {
    // process_resident_memory_bytes (RSS), CPU, event-loop lag, heap.
    collectDefaultMetrics({ register: this.registry });
  }
}
