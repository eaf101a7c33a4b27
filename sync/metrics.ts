// The uploader's metrics: batches, rows and bytes per stream, backlog, circuit, commands.
import type { MetricFactory } from '../gateway/kernel/metrics.js';

export function syncMetrics(f: MetricFactory) {
  return {
    syncBatches: f.counter('outpost_sync_batches_total', 'Upload batches by stream and result (ok, duplicate, error)', [
      'stream',
      'result',
    ]),
    syncRows: f.counter('outpost_sync_rows_total', 'Rows acknowledged by the cloud, by stream', ['stream']),
    syncBytes: f.counter('outpost_sync_bytes_total', 'Batch bytes sent (Parquet bodies, retries included), by stream', ['stream']),
    syncCommands: f.counter('outpost_sync_commands_total', 'Cloud commands applied, by kind and result', ['kind', 'result']),
    syncBacklogRows: f.gauge('outpost_sync_backlog_rows', 'Rows not yet acknowledged by the cloud', ['stream']),
    syncBacklogBytes: f.gauge('outpost_sync_backlog_bytes', 'Approximate store bytes of the unsent rows', ['stream']),
    syncOldestUnsent: f.gauge('outpost_sync_oldest_unsent_seconds', 'Age of the oldest unsent row (0: none)', ['stream']),
    syncDropped: f.gauge('outpost_sync_dropped_rows', 'Unsent rows deleted by retention (disk quota or age) since the store was created', [
      'stream',
    ]),
    syncCircuit: f.gauge(
      'outpost_sync_circuit_state',
      'Uplink circuit: 0 closed (healthy), 1 half-open (probing), 2 open (cloud unreachable)',
    ),
    syncLastSuccess: f.gauge('outpost_sync_last_success_timestamp_seconds', 'When the cloud last answered an upload or poll'),
    syncConsecutiveFailures: f.gauge('outpost_sync_consecutive_failures', 'Failed sync calls since the last success'),
  };
}
export type SyncMetrics = ReturnType<typeof syncMetrics>;
