// Retry timing for the uploader: exponential backoff with full jitter, capped, and a
// circuit that opens after a few consecutive failures (so /metrics and `outpost sync
// status` say "the cloud is unreachable" rather than showing a stream of errors).
// A Retry-After from the cloud wins over our own schedule, even past maxMs (up to an hour,
// so a broken header cannot park the uplink for days).
import { backoffDelay } from '../gateway/kernel/backoff.js';

export type CircuitState = 'closed' | 'open' | 'half-open';
export const CIRCUIT_GAUGE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

export const MAX_RETRY_AFTER_MS = 3_600_000;
const HALF_TO_FULL = { low: 0.5, high: 1 };

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  openAfterFailures: number;
}

export class Backoff {
  private failures = 0;
  private until = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** When the next attempt may start (ms since epoch; 0 = now). */
  get nextAttemptAt(): number {
    return this.until;
  }

  state(now = Date.now()): CircuitState {
    if (this.failures < this.opts.openAfterFailures) return 'closed';
    return now >= this.until ? 'half-open' : 'open';
  }

  succeeded(): void {
    this.failures = 0;
    this.until = 0;
  }

  /** Records a failure; returns how long to wait before the next attempt. */
  failed(retryAfterMs: number | null = null, now = Date.now()): number {
    this.failures++;
    const wait =
      retryAfterMs !== null
        ? Math.min(MAX_RETRY_AFTER_MS, Math.max(retryAfterMs, 0))
        : backoffDelay(this.failures - 1, this.opts.initialMs, this.opts.maxMs, HALF_TO_FULL, this.random);
    this.until = now + wait;
    return wait;
  }
}

/** Paces uploads to a byte rate: a batch may start once the bytes before it have "drained". */
export class Pacer {
  private freeAt = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** How long to wait before sending `bytes` (and books them). 0 when uncapped. */
  reserve(bytes: number, now = Date.now()): number {
    if (this.bytesPerSecond <= 0) return 0;
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes / this.bytesPerSecond) * 1000;
    return start - now;
  }
}
