// Runs retention (retention.ts) at start and every checkIntervalS, one pass at a time.
// Stopping waits at most 2 s for a pass in progress, so a long one cannot eat the
// shutdown deadline before the final commit.
import type { DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import { applyRetention, type RetentionLimits } from './retention.js';

export class RetentionService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly instance: DuckDBInstance,
    private readonly path: string,
    private readonly limits: RetentionLimits & { checkIntervalS: number },
    private readonly sync: boolean,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    const run = () => {
      if (this.running || this.stopped) return;
      this.running = applyRetention(this.instance, this.path, this.limits, this.metrics, this.log, Date.now(), { sync: this.sync })
        .catch((err: Error) => this.log.error({ err }, 'retention pass failed'))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(run, this.limits.checkIntervalS * 1000);
    this.timer.unref();
    setImmediate(run);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}
