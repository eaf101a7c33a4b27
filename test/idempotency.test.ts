// Idempotency-Key on the acting POST routes: a retried request gets the first answer and
// the action happens once — also when both copies arrive together and after a restart;
// the same key on a different request is refused; failures are not remembered.
import t from 'tap';
import { hashPassword, newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { api, freePort, metricValue, removeDir, startGateway, tempDir, type TestGateway } from './helpers/gateway.js';

interface Answer {
  status: number;
  replayed: boolean;
  body: Record<string, unknown>;
}

async function post(g: TestGateway, token: string, path: string, body: unknown, key?: string): Promise<Answer> {
  const res = await fetch(g.httpUrl + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    replayed: res.headers.get('idempotent-replayed') === 'true',
    body: (await res.json()) as Record<string, unknown>,
  };
}

async function eventsOf(g: TestGateway, token: string, type: string): Promise<{ data: Record<string, unknown> }[]> {
  return (await api<{ events: { data: Record<string, unknown> }[] }>(g.httpUrl, `/api/v1/events?type=${type}`, token)).body.events;
}

async function setup(dir = tempDir()) {
  const operator = newApiToken();
  const closedPort = await freePort(); // nothing listens: writes to this line fail
  const g = await startGateway(
    {
      http: { tokens: [{ name: 'ops', role: 'operator', doorGroups: ['*'], sha256: sha256Hex(operator) }] },
      drivers: {
        modbus: {
          enabled: true,
          lines: [{ id: 'dead', transport: 'tcp', host: '127.0.0.1', port: closedPort, timeoutMs: 200, retries: 0 }],
        },
      },
      devices: [
        { id: 'gate-ctl', zone: 'yard', mqtt: { username: 'gate-ctl', passwordHash: await hashPassword('gate-pw') } },
        {
          id: 'dead-ctl',
          zone: 'yard',
          modbus: { line: 'dead', pollMs: 600000, points: [{ name: 'relay', table: 'coil', address: 1, type: 'bool', writable: true }] },
        },
      ],
      locks: [
        { id: 'yard-gate', group: 'yard', device: 'gate-ctl' },
        { id: 'dead-door', group: 'yard', device: 'dead-ctl', modbusPoint: 'relay' },
      ],
    },
    dir,
  );
  return { g, operator };
}

t.test('a retried unlock acts once and returns the first answer, also across a restart', async (t) => {
  const dir = tempDir();
  let { g, operator } = await setup(dir);
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const first = await post(g, operator, '/api/v1/locks/yard-gate/unlock', { seconds: 5, reason: 'delivery' }, 'unlock-0001');
  t.equal(first.status, 200);
  t.equal(first.replayed, false);
  const retry = await post(g, operator, '/api/v1/locks/yard-gate/unlock', { seconds: 5, reason: 'delivery' }, 'unlock-0001');
  t.equal(retry.status, 200);
  t.equal(retry.replayed, true, 'the retry is answered from the key');
  t.same(retry.body, first.body, 'with the first answer');
  t.equal((await eventsOf(g, operator, 'access.granted')).length, 1, 'the door was unlocked once');

  // Both copies at once: the second waits for the first's answer.
  const [a, b] = await Promise.all([
    post(g, operator, '/api/v1/locks/yard-gate/lock', {}, 'lock-0002'),
    post(g, operator, '/api/v1/locks/yard-gate/lock', {}, 'lock-0002'),
  ]);
  t.same([a.status, b.status], [200, 200]);
  t.same(a.body, b.body);
  t.equal([a, b].filter((x) => x.replayed).length, 1, 'one of the two was a replay');
  t.equal((await eventsOf(g, operator, 'access.granted')).length, 2, 'locked once');

  const misuse = await post(g, operator, '/api/v1/locks/yard-gate/unlock', { seconds: 9 }, 'unlock-0001');
  t.equal(misuse.status, 422, 'the same key with another request is refused');
  t.match(misuse.body.error, /already used with a different request/);
  const badKey = await post(g, operator, '/api/v1/locks/yard-gate/unlock', {}, 'x'.repeat(300));
  t.equal(badKey.status, 400);

  await g.stop();
  ({ g, operator } = await setup(dir));
  const afterRestart = await post(g, operator, '/api/v1/locks/yard-gate/unlock', { seconds: 5, reason: 'delivery' }, 'unlock-0001');
  t.equal(afterRestart.replayed, true, 'a retry after a restart is still recognised');
  t.same(afterRestart.body, first.body);
  t.equal((await eventsOf(g, operator, 'access.granted')).length, 2, 'and does not unlock again');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(metrics, 'outpost_http_idempotent_replays_total'), 1);
});

t.test('alert acknowledge and device commands act once per key; failures are retried for real', async (t) => {
  const { g, operator } = await setup();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const { alert } = await g.gw.alerts.raise({ key: 'k1', rule: 'r1', severity: 'medium', message: 'hot', data: {} });
  const ack1 = await post(g, operator, `/api/v1/alerts/${alert.id}/acknowledge`, { note: 'on it' }, 'ack-1');
  const ack2 = await post(g, operator, `/api/v1/alerts/${alert.id}/acknowledge`, { note: 'on it' }, 'ack-1');
  t.equal(ack1.status, 200);
  t.same(ack2.body, ack1.body, 'the retried acknowledge gets the first answer');
  t.equal(ack2.replayed, true);
  const noKey = await post(g, operator, `/api/v1/alerts/${alert.id}/acknowledge`, { note: 'on it' });
  t.equal(noKey.status, 409, 'without a key the second acknowledge is a real (refused) second attempt');

  const cmd1 = await post(g, operator, '/api/v1/devices/gate-ctl/commands', { action: 'ping' }, 'cmd-1');
  const cmd2 = await post(g, operator, '/api/v1/devices/gate-ctl/commands', { action: 'ping' }, 'cmd-1');
  t.equal(cmd1.status, 202);
  t.same(cmd2.body, cmd1.body, 'same command id in the replay');
  t.equal((await eventsOf(g, operator, 'command.sent')).length, 1, 'the command was sent once');

  const fail1 = await post(g, operator, '/api/v1/locks/dead-door/unlock', {}, 'dead-1');
  t.equal(fail1.status, 502, 'the lock device does not answer');
  const fail2 = await post(g, operator, '/api/v1/locks/dead-door/unlock', {}, 'dead-1');
  t.equal(fail2.replayed, false, 'a failed attempt is not remembered: the retry tries again');
  t.equal((await eventsOf(g, operator, 'access.denied')).filter((e) => e.data.lock === 'dead-door').length, 2);
});
