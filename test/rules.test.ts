// The three example rules end to end on a running gateway: readings arrive over
// MQTT, rules run in the Piscina workers, and actions reach a real Modbus peer, the lock
// controller and the alerts store. Also: a crashed worker and a restart keep rule state.
import t from 'tap';
import { api, connect, endClient, publish, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';
import { startModbusPeer, type ModbusPeer } from './helpers/modbus.js';

interface Alert {
  rule: string;
  severity: string;
  message: string;
  status: string;
  count: number;
}

const hhmm = (d: Date) => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;

function site(peer: ModbusPeer, dir: string, rules: unknown[]) {
  return {
    dataDir: dir,
    timezone: 'UTC',
    drivers: {
      modbus: { enabled: true, lines: [{ id: 'bus', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0 }] },
    },
    devices: [
      {
        id: 'bms',
        zone: 'plant',
        modbus: {
          line: 'bus',
          pollMs: 60000,
          points: [
            { name: 'ac_on', table: 'coil', address: 0, type: 'bool', writable: true },
            { name: 'door1', table: 'coil', address: 1, type: 'bool', writable: true },
            { name: 'door2', table: 'coil', address: 2, type: 'bool', writable: true },
          ],
        },
      },
    ],
    locks: [
      // Coil on = unlocked; the doors start unlocked in these tests.
      { id: 'lab-door', group: 'restricted', device: 'bms', modbusPoint: 'door1', unlockSeconds: 0 },
      { id: 'store-door', group: 'restricted', device: 'bms', modbusPoint: 'door2', unlockSeconds: 0 },
    ],
    rules,
  };
}

async function alerts(g: TestGateway): Promise<Alert[]> {
  return (await api<{ alerts: Alert[] }>(g.httpUrl, '/api/v1/alerts?limit=100', g.adminToken)).body.alerts;
}

t.test('the three example rules, end to end', async (t) => {
  const peer = await startModbusPeer();
  peer.coils[1] = peer.coils[2] = true;
  const now = new Date();
  const dir = tempDir();
  const g = await startGateway(
    site(peer, dir, [
      {
        id: 'hot-room',
        when: { reading: { device: 'temp-*', point: 'temperature' } },
        if: { value: { op: '>', value: 30 } },
        for: '400ms', // "for 5 min" in the real rule; shortened for the test
        clear: { value: { op: '<', value: 28 } },
        then: [
          { alert: { severity: 'high', message: '{{device}} at {{value}} °C' } },
          { write: { device: 'bms', point: 'ac_on', value: true } },
        ],
      },
      {
        id: 'intruder',
        when: { event: { type: 'detection.person', subject: 'restricted' } },
        if: { time: { between: [hhmm(new Date(now.getTime() - 3_600_000)), hhmm(new Date(now.getTime() + 3_600_000))] } },
        then: [{ lock: { group: 'restricted', action: 'lock' } }, { alert: { severity: 'critical', message: 'person in {{subject}}' } }],
      },
      {
        id: 'congestion',
        when: { reading: { device: 'road-*', point: 'vehicles' } },
        if: {
          all: [
            { sum: { window: '5m', op: '>', value: 100 } },
            { avg: { window: '5m', op: '<', value: 20, point: 'speed' } },
            { none: { type: 'incident.reported', within: '5m' } },
          ],
        },
        then: [{ alert: { severity: 'medium', message: 'congestion on {{device}}' } }],
      },
    ]),
    dir,
  );
  t.teardown(async () => {
    await g.stop();
    await peer.close();
    removeDir(g.dir);
  });
  const mqtt = await connect(g.mqttPort);
  t.teardown(() => endClient(mqtt));

  // 1. Too hot for longer than `for`: one alert, AC on. A single hot reading is not enough.
  await publish(mqtt, 'devices/test/plant/temp-1/telemetry', JSON.stringify({ temperature: 31 }));
  await new Promise((r) => setTimeout(r, 100));
  t.same(await alerts(g), [], 'not yet: the condition has not held for 400 ms');
  await new Promise((r) => setTimeout(r, 450));
  await publish(mqtt, 'devices/test/plant/temp-1/telemetry', JSON.stringify({ temperature: 32 }));
  await waitFor(() => (peer.coils[0] ? true : undefined), 'AC switched on');
  const hot = (await alerts(g)).find((a) => a.rule === 'hot-room');
  t.match(hot, { severity: 'high', message: 'temp-1 at 32 °C', status: 'open' });

  // 2. A person in the restricted zone during the watched hours locks every door.
  await g.gw.emitEvent('detection.person', 'camera', { zone: 'restricted', confidence: 0.91 }, 'restricted');
  await waitFor(() => (!peer.coils[1] && !peer.coils[2] ? true : undefined), 'doors locked');
  // Each audit event is committed just after its coil write: wait for both.
  const lockAudit = await waitFor(async () => {
    const ev = (
      await api<{ events: { data: { by: string; via: string } }[] }>(g.httpUrl, '/api/v1/events?type=access.granted', g.adminToken)
    ).body.events;
    return ev.length >= 2 ? ev : undefined;
  }, 'lock audit events');
  t.ok(
    lockAudit.length >= 2 && lockAudit.every((e) => e.data.by === 'rule:intruder' && e.data.via === 'rule'),
    'locking is audited as the rule',
  );
  await waitFor(
    async () => ((await alerts(g)).some((a) => a.rule === 'intruder' && a.severity === 'critical') ? true : undefined),
    'critical alert',
  );

  // 3. Congestion: > 100 vehicles in 5 min at < 20 km/h, and no incident reported.
  for (let i = 0; i < 5; i++) await publish(mqtt, 'devices/test/road/road-7/telemetry', JSON.stringify({ speed: 12, vehicles: 20 }));
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(
    (await alerts(g)).some((a) => a.rule === 'congestion'),
    '100 vehicles is not more than 100',
  );
  await publish(mqtt, 'devices/test/road/road-7/telemetry', JSON.stringify({ speed: 12, vehicles: 20 }));
  await waitFor(async () => ((await alerts(g)).some((a) => a.rule === 'congestion') ? true : undefined), 'congestion alert');

  // An incident report suppresses it on another road.
  await g.gw.emitEvent('incident.reported', 'api', { road: 'road-9' });
  for (let i = 0; i < 8; i++) await publish(mqtt, 'devices/test/road/road-9/telemetry', JSON.stringify({ speed: 10, vehicles: 20 }));
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await alerts(g)).filter((a) => a.rule === 'congestion').length, 1, 'no congestion alert while an incident is reported');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_rules_firings_total\{rule="congestion"\} 1/);
});

t.test('rule state survives a worker crash and a gateway restart', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const rules = [
    {
      id: 'busy',
      when: { reading: { device: 'door-*', point: 'opened' } },
      if: { count: { window: '1h', op: '>=', value: 6 } },
      then: [{ alert: { severity: 'low', message: '{{device}} opened often' } }],
    },
  ];
  const opened = async (g: TestGateway, n: number) => {
    const c = await connect(g.mqttPort);
    for (let i = 0; i < n; i++) await publish(c, 'devices/test/hall/door-3/telemetry', JSON.stringify({ opened: true }));
    await endClient(c);
  };
  let g = await startGateway(site(peer, dir, rules), dir);
  await opened(g, 2);
  await g.gw.rules.persist(); // a snapshot, as the periodic one would take
  await g.gw.rules.crashWorker();
  await opened(g, 2); // counted by the restored worker: 4 so far
  await g.stop();
  g = await startGateway(site(peer, dir, rules), dir);
  t.teardown(() => g.stop());
  t.same(await alerts(g), [], 'no alert yet: 4 of 6');
  await opened(g, 2); // 6 within the hour, across a crash and a restart
  await waitFor(async () => ((await alerts(g)).length === 1 ? true : undefined), 'alert after the sixth opening');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_rules_evaluations_total [1-9]/);
});

t.test('webhook actions call local HTTP services; failures are recorded, not fatal', async (t) => {
  const { createServer } = await import('node:http');
  const got: { url: string; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ url: req.url ?? '', body });
      res.writeHead(req.url === '/broken' ? 500 : 204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const dir = tempDir();
  const g = await startGateway(
    {
      rules: [
        {
          id: 'notify',
          when: { reading: { device: 'pump-*', point: 'fault' } },
          if: { value: { op: '==', value: true } },
          then: [
            { webhook: { url: `http://127.0.0.1:${port}/hook/{{device}}`, body: { text: '{{device}} fault' } } },
            { webhook: { url: `http://127.0.0.1:${port}/broken` } },
          ],
        },
      ],
    },
    dir,
  );
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const c = await connect(g.mqttPort);
  await publish(c, 'devices/test/plant/pump-2/telemetry', JSON.stringify({ fault: true }));
  await endClient(c);
  await waitFor(() => (got.length >= 2 ? true : undefined), 'two webhook calls');
  t.same(got[0], { url: '/hook/pump-2', body: '{"text":"pump-2 fault"}' });
  t.equal(got[1]?.url, '/broken');
  const failed = await waitFor(async () => {
    const ev = (await api<{ events: { data: { error: string } }[] }>(g.httpUrl, '/api/v1/events?type=rule.action_failed', g.adminToken))
      .body.events;
    return ev.length > 0 ? ev : undefined;
  }, 'action_failed event');
  t.match(failed[0]?.data.error, /HTTP 500/);
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_rules_actions_total\{kind="webhook",result="ok"\} 1/);
  t.match(metrics, /outpost_rules_actions_total\{kind="webhook",result="error"\} 1/);
});

t.test('schedule triggers fire at cron times in the site time zone', async (t) => {
  const { Scheduler } = await import('../gateway/rules/schedule.js');
  const rule = (id: string, schedule: string) => ({ id, enabled: true, when: { schedule }, then: [{ event: { type: 'x.y' } }] });
  // 07:00 on weekdays in Berlin is 06:00 UTC in winter and 05:00 UTC after the spring change.
  const s = new Scheduler([rule('morning', '0 7 * * 1-5')], 'Europe/Berlin', Date.parse('2026-03-27T12:00:00Z'));
  t.same(s.due(Date.parse('2026-03-30T04:59:59Z'), 'site'), [], 'not before 07:00 local');
  const due = s.due(Date.parse('2026-03-30T05:00:00Z'), 'site');
  t.match(due, [{ type: 'schedule', subject: 'morning', ts: Date.parse('2026-03-30T05:00:00Z') }], 'Monday 07:00 CEST');
  t.same(s.due(Date.parse('2026-03-30T05:00:01Z'), 'site'), [], 'once per occurrence');

  const dir = tempDir();
  const g = await startGateway({ rules: [rule('beat', '* * * * * *')] }, dir);
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const beats = await waitFor(
    async () => {
      const ev = (await api<{ events: { subject: string }[] }>(g.httpUrl, '/api/v1/events?type=x.y', g.adminToken)).body.events;
      return ev.length >= 2 ? ev : undefined;
    },
    'two scheduled firings',
    5000,
  );
  t.equal(beats[0]?.subject, 'beat', 'a scheduled rule acts with its own id as subject');
});

t.test('a badge reader opens a door only for credentials on the local allow-list, all audited', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const dir = tempDir();
  const g = await startGateway(
    {
      ...site(peer, dir, [
        {
          id: 'lab-badge',
          when: { reading: { device: 'reader-lab', point: 'badge' } },
          then: [{ badge: { lock: 'lab-door', list: 'staff', seconds: 0 } }],
        },
      ]),
      allowLists: { staff: ['04A1B2C3', '1234'] },
    },
    dir,
  );
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const audit = async () =>
    (
      await api<{ events: { type: string; data: { by: string; via: string; detail: string } }[] }>(
        g.httpUrl,
        '/api/v1/events?type=access.*',
        g.adminToken,
      )
    ).body.events;
  const c = await connect(g.mqttPort);
  t.teardown(() => endClient(c));
  await publish(c, 'devices/test/lab/reader-lab/telemetry', JSON.stringify({ badge: 'FFFF0000' }));
  const denied = await waitFor(async () => (await audit()).find((e) => e.type === 'access.denied'), 'denied badge audited');
  t.match(denied.data, { by: 'badge:FFFF0000', via: 'badge', detail: /not on allow-list "staff"/ });
  t.equal(peer.coils[1], false, 'the door stayed locked');
  await publish(c, 'devices/test/lab/reader-lab/telemetry/badge', '1234'); // a keypad code, as a plain value
  await waitFor(() => (peer.coils[1] ? true : undefined), 'door opened for an allowed code');
  const granted = await waitFor(async () => (await audit()).find((e) => e.type === 'access.granted'), 'granted badge audited');
  t.match(granted.data, { by: 'badge:1234', via: 'badge' });
});

t.test('a state-change trigger with a tag filter runs in the workers with the configured devices', async (t) => {
  const dir = tempDir();
  const g = await startGateway(
    {
      devices: [
        { id: 'door-1', zone: 'lobby', tags: ['entry'] },
        { id: 'door-2', zone: 'lobby' },
      ],
      rules: [
        {
          id: 'entry-opened',
          when: { change: { device: 'door-*', point: 'open', from: false, to: true, tags: ['entry'] } },
          then: [{ event: { type: 'door.opened', data: { door: '{{device}}', zone: '{{zone}}', was: '{{previous}}' } } }],
        },
      ],
    },
    dir,
  );
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const mqtt = await connect(g.mqttPort);
  t.teardown(() => endClient(mqtt));
  for (const door of ['door-1', 'door-2']) {
    await publish(mqtt, `devices/test/lobby/${door}/telemetry`, JSON.stringify({ open: false }));
    await publish(mqtt, `devices/test/lobby/${door}/telemetry`, JSON.stringify({ open: true }));
  }
  type Ev = { subject?: string; data: { door: string; zone: string; was: string } };
  const events = await waitFor(async () => {
    const ev = (await api<{ events: Ev[] }>(g.httpUrl, '/api/v1/events?type=door.opened', g.adminToken)).body.events;
    return ev.length > 0 ? ev : undefined;
  }, 'door.opened event');
  await new Promise((r) => setTimeout(r, 200));
  const all = (await api<{ events: Ev[] }>(g.httpUrl, '/api/v1/events?type=door.opened', g.adminToken)).body.events;
  t.equal(all.length, 1, 'only the tagged door, only its false → true transition');
  t.same(events[0]?.data, { door: 'door-1', zone: 'lobby', was: 'false' });
});
