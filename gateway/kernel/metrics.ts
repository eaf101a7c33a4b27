// One Prometheus registry per process part (so tests can run several gateways), and the
// small factory every part declares its metrics with: the gateway core, each driver and
// the uploader each own their metric definitions, registered here.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class MetricRegistry {
  readonly registry = new Registry();

  constructor(opts: { processMetrics?: boolean } = {}) {
    // process_resident_memory_bytes (RSS), CPU, event-loop lag, heap.
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> {
    return new Histogram<L>({ name, help, buckets, labelNames, registers: [this.registry] });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export type MetricFactory = Pick<MetricRegistry, 'counter' | 'gauge' | 'histogram'>;
