// The cloud's Prometheus metrics: every answer counted by route and status, so refused
// input (bad signatures, stale clocks, malformed batches, full queues) shows as a rate
// rather than only as log lines; and what ingest stored, by stream.
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

export class CloudMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'outpost_cloud_requests_total',
    help: 'Answers by route pattern and HTTP status (4xx: refused input, 5xx: our failures)',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly ingestBatches = new Counter({
    name: 'outpost_cloud_ingest_batches_total',
    help: 'Committed batches by stream and result (new, duplicate)',
    labelNames: ['stream', 'result'] as const,
    registers: [this.registry],
  });
  readonly ingestRows = new Counter({
    name: 'outpost_cloud_ingest_rows_total',
    help: 'Rows newly stored, by stream',
    labelNames: ['stream'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
