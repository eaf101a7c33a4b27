// The uploader's timing pieces on their own: backoff with jitter and cap, the circuit,
// Retry-After parsing, and the bandwidth pacer.
import t from 'tap';
import { Backoff, MAX_RETRY_AFTER_MS, Pacer } from '../sync/backoff.js';
import { parseRetryAfter } from '../sync/client.js';
import { backoffDelay } from '../gateway/kernel/backoff.js';

t.test('backoff doubles per failure, jitters within [half, all] of the step, and caps', async (t) => {
  const lo = new Backoff({ initialMs: 100, maxMs: 1000, openAfterFailures: 3 }, () => 0);
  const hi = new Backoff({ initialMs: 100, maxMs: 1000, openAfterFailures: 3 }, () => 0.999999);
  const now = 1_000_000;
  t.same(
    [1, 2, 3, 4, 5, 6].map(() => lo.failed(null, now)),
    [50, 100, 200, 400, 500, 500],
  );
  t.same(
    [1, 2, 3, 4, 5, 6].map(() => hi.failed(null, now)),
    [100, 200, 400, 800, 1000, 1000],
  );
});

t.test('the circuit opens after N failures, half-opens when the wait is over, closes on success', async (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, openAfterFailures: 2 }, () => 1);
  t.equal(b.state(0), 'closed');
  b.failed(null, 0);
  t.equal(b.state(0), 'closed', 'one failure is not an outage');
  const wait = b.failed(null, 0);
  t.equal(b.state(wait - 1), 'open');
  t.equal(b.state(wait), 'half-open');
  t.equal(b.nextAttemptAt, wait);
  b.succeeded();
  t.equal(b.state(wait), 'closed');
  t.equal(b.consecutiveFailures, 0);
});

t.test('Retry-After wins over the schedule, even past maxMs, up to an hour', async (t) => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, openAfterFailures: 3 }, () => 1);
  t.equal(b.failed(5000, 0), 5000);
  t.equal(b.failed(10 * 3_600_000, 0), MAX_RETRY_AFTER_MS);
  t.equal(parseRetryAfter('7'), 7000);
  t.equal(parseRetryAfter(' 0 '), 0);
  t.equal(parseRetryAfter(new Date(Date.UTC(2026, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2026, 0, 1)), 30_000);
  t.equal(parseRetryAfter('soon'), null);
  t.equal(parseRetryAfter(undefined), null);
});

t.test('the pacer spaces batches so the average rate stays at the cap', async (t) => {
  const p = new Pacer(10_000); // bytes/s
  t.equal(p.reserve(5_000, 0), 0, 'the first batch goes at once');
  t.equal(p.reserve(5_000, 0), 500, 'the next waits until 5 000 B have drained at 10 kB/s');
  t.equal(p.reserve(20_000, 0), 1000);
  t.equal(p.reserve(1, 10_000), 0, 'after a quiet spell no wait');
  t.equal(new Pacer(0).reserve(1e9, 0), 0, '0 = no cap');
});

t.test('the shared backoff: doubling, capped, jitter as a factor range', async (t) => {
  t.same(
    [0, 1, 2, 3, 4, 40].map((n) => backoffDelay(n, 100, 1000)),
    [100, 200, 400, 800, 1000, 1000],
    'no jitter: exact steps',
  );
  t.equal(
    backoffDelay(1, 1000, 30_000, { low: 0.8, high: 1.2 }, () => 0),
    1600,
  );
  t.equal(
    backoffDelay(1, 1000, 30_000, { low: 0.8, high: 1.2 }, () => 1),
    2400,
  );
  t.equal(
    backoffDelay(10, 1000, 30_000, { low: 0.8, high: 1.2 }, () => 1),
    30_000,
    'jitter never passes the cap',
  );
});
