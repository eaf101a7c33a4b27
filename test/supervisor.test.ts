// Supervisor: a crashing driver is restarted with capped exponential backoff and reported,
// while the rest of the gateway keeps running.
import t from 'tap';
import type { Driver, DriverContext } from '../gateway/contract/driver.js';
import { api, removeDir, startGateway, waitFor } from './helpers/gateway.js';
import { Gateway } from '../gateway/gateway.js';
import { parseConfig } from '../config/site.js';
import { createLogger } from '../gateway/kernel/log.js';
import { tempDir } from './helpers/gateway.js';

/** A driver that fails to start `failStarts` times, then runs and later fails at run time once. */
class FlakyDriver implements Driver {
  readonly name = 'flaky';
  starts: number[] = [];
  stops = 0;
  private ctx: DriverContext | null = null;
  constructor(private failStarts: number) {}
  async start(ctx: DriverContext): Promise<void> {
    this.starts.push(Date.now());
    this.ctx = ctx;
    if (this.failStarts-- > 0) throw new Error(`boom ${this.starts.length}`);
  }
  crashNow(): void {
    this.ctx?.fail(new Error('lost the bus'));
  }
  async stop(): Promise<void> {
    this.stops++;
  }
  health() {
    return { ok: true };
  }
}

t.test('restarts with capped exponential backoff and reports each crash', async (t) => {
  const dir = tempDir();
  const flaky = new FlakyDriver(3);
  const config = parseConfig(
    `site: sup\ndataDir: ${dir}\nhttp: {host: 127.0.0.1, port: 0}\ndrivers: {mqtt: {enabled: false}}\n`,
    'sup.yaml',
  );
  const gw = await Gateway.start({ config, log: createLogger('silent', { pretty: false }), drivers: [() => flaky] });
  t.teardown(async () => {
    await gw.stop();
    removeDir(dir);
  });
  t.equal(gw.phase, 'ready', 'the gateway is ready although a driver is failing');
  const health = await api<{ status: string; driversDown: Record<string, string> }>(`http://127.0.0.1:${gw.api.port}`, '/health');
  t.equal(health.status, 503, 'but /health says it is degraded');
  t.same(health.body, { status: 'degraded', site: 'sup', driversDown: { flaky: 'boom 1' } });
  // 500 ms, 1 s, 2 s backoff: the fourth start succeeds.
  await waitFor(() => (gw.supervisor.status().flaky?.state === 'running' ? true : undefined), 'flaky running', 8000);
  t.equal(flaky.starts.length, 4);
  const gaps = flaky.starts.slice(1).map((s, i) => s - flaky.starts[i]);
  t.ok(gaps[0] >= 450 && gaps[1] >= 950 && gaps[2] >= 1950, `gaps grow: ${gaps.join(', ')} ms`);
  t.ok(gaps[1] > gaps[0] && gaps[2] > gaps[1], 'exponential');
  t.equal(gw.supervisor.status().flaky?.restarts, 3);

  flaky.crashNow();
  t.equal(gw.supervisor.status().flaky?.state, 'backoff');
  await waitFor(() => (gw.supervisor.status().flaky?.state === 'running' ? true : undefined), 'flaky back', 15000);
  t.equal(flaky.starts.length, 5);
  t.ok(flaky.stops >= 4, 'a failed driver is stopped before it is restarted');
  const metrics = await gw.metrics.registry.metrics();
  t.match(metrics, /outpost_driver_restarts_total\{driver="flaky"\} 4/);
  const res = await api<{ events: { data: { driver: string; error: string } }[] }>(
    `http://127.0.0.1:${gw.api.port}`,
    '/api/v1/events?type=driver.crashed',
    gw.tokens.adminTokenFile ? (await import('node:fs')).readFileSync(gw.tokens.adminTokenFile, 'utf8').trim() : undefined,
  );
  t.same(res.body.events.map((e) => e.data.error).sort(), ['boom 1', 'boom 2', 'boom 3', 'lost the bus'], 'every crash is an event');
});

t.test('backoff is capped', async (t) => {
  const g = await startGateway();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const { Supervisor } = await import('../gateway/supervisor.js');
  const flaky = new FlakyDriver(100);
  const delays: number[] = [];
  const sup = new Supervisor(
    [flaky],
    () => ({}) as DriverContext,
    g.gw.log,
    g.gw.metrics,
    (_d, _e, delay) => delays.push(delay),
    {
      initialBackoffMs: 5,
      maxBackoffMs: 40,
    },
  );
  await sup.startAll();
  await waitFor(() => (delays.length >= 7 ? true : undefined), 'seven failures', 5000);
  await sup.stopAll();
  t.same(delays.slice(0, 7), [5, 10, 20, 40, 40, 40, 40]);
  const startsAtStop = flaky.starts.length;
  await new Promise((r) => setTimeout(r, 100));
  t.equal(flaky.starts.length, startsAtStop, 'no restart after stopAll');
});
