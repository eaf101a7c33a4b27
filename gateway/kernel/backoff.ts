// One exponential backoff for every retry loop in the gateway (driver restarts, Modbus and
// RTSP reconnects, ONVIF event subscriptions, cloud uploads): initialMs doubling per
// failure, capped at maxMs, optionally jittered so many retriers do not move in step.

/** Jitter as a factor range applied to the step: [0.5, 1] = "between half and all of it". */
export interface Jitter {
  low: number;
  high: number;
}

const NO_JITTER: Jitter = { low: 1, high: 1 };

/** The wait after `attempt` failures so far (0 = the first retry waits initialMs). */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  jitter: Jitter = NO_JITTER,
  rand: () => number = Math.random,
): number {
  const step = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  if (jitter.low === 1 && jitter.high === 1) return step;
  return Math.round(Math.min(maxMs, step * (jitter.low + (jitter.high - jitter.low) * rand())));
}
