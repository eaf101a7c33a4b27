// Per-device credentials, topic ACLs, anonymous policy and online/offline events.
import t from 'tap';
import type { ReadingRow } from '../gateway/store/queries.js';
import { hashPassword } from '../gateway/kernel/secrets.js';
import { api, connect, endClient, metricValue, publish, removeDir, startGateway, waitFor } from './helpers/gateway.js';

interface CloudEvent {
  type: string;
  subject?: string;
  data?: { device: string; reason: string };
}

t.test('MQTT credentials and ACL', async (t) => {
  const devices = [
    { id: 'lock-1', zone: 'lobby', mqtt: { username: 'lock-1', passwordHash: await hashPassword('s3cret-1') } },
    { id: 'meter-1', zone: 'plant', mqtt: { username: 'meter-1', passwordHash: await hashPassword('s3cret-2') } },
  ];
  const g = await startGateway({ devices, drivers: { mqtt: { anonymous: 'never' } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const readings = async (device: string) =>
    (await api<{ readings: ReadingRow[] }>(g.httpUrl, `/api/v1/readings?device=${device}`, g.adminToken)).body.readings;
  const events = async (type: string) =>
    (await api<{ events: CloudEvent[] }>(g.httpUrl, `/api/v1/events?type=${type}`, g.adminToken)).body.events;
  const metrics = async () => (await api<string>(g.httpUrl, '/metrics')).body;

  t.test('anonymous is refused when anonymous: never', async (t) => {
    await t.rejects(connect(g.mqttPort), { message: /Not authorized/i });
  });

  t.test('a wrong password is refused with "bad username or password"', async (t) => {
    await t.rejects(connect(g.mqttPort, { username: 'lock-1', password: 'nope' }), { message: /Bad username or password/i });
    await t.rejects(connect(g.mqttPort, { username: 'ghost', password: 'x' }), { message: /Bad username or password/i });
    t.ok(metricValue(await metrics(), 'outpost_auth_failures_total', { surface: 'mqtt', reason: 'bad_credentials' }) >= 2);
  });

  t.test('a device publishes under its own prefix; connect/disconnect are events', async (t) => {
    const c = await connect(g.mqttPort, { username: 'lock-1', password: 's3cret-1' });
    await publish(c, 'devices/test/lobby/lock-1/telemetry', JSON.stringify({ locked: true }));
    t.same(
      (await readings('lock-1')).map((r) => r.value),
      [true],
    );
    await endClient(c);
    const offline = await waitFor(async () => {
      const ev = await events('device.offline');
      return ev.find((e) => e.subject === 'lock-1');
    }, 'device.offline event');
    t.equal(offline.data?.reason, 'disconnect');
    const online = await events('device.online');
    t.ok(
      online.some((e) => e.subject === 'lock-1'),
      'device.online recorded',
    );
  });

  t.test("publishing under another device's prefix closes the connection and stores nothing", async (t) => {
    const c = await connect(g.mqttPort, { username: 'lock-1', password: 's3cret-1' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('devices/test/plant/meter-1/telemetry', JSON.stringify({ kwh: 999 }), { qos: 1 });
    await closed;
    t.same(await readings('meter-1'), [], 'nothing stored for meter-1');
    t.ok(metricValue(await metrics(), 'outpost_auth_failures_total', { reason: 'publish_denied' }) >= 1);
    c.end(true);
  });

  t.test('a device may not publish to its own command topic', async (t) => {
    const c = await connect(g.mqttPort, { username: 'meter-1', password: 's3cret-2' });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish('devices/test/plant/meter-1/command', '{}', { qos: 1 });
    await closed;
    t.pass('connection closed');
    c.end(true);
  });

  t.test('a device subscribes only to its own command topic', async (t) => {
    const c = await connect(g.mqttPort, { username: 'meter-1', password: 's3cret-2' });
    t.teardown(() => endClient(c));
    // mqtt.js reports a SUBACK failure code (0x80) as an error on the subscribe callback.
    const refused = (topic: string) => new Promise<boolean>((resolve) => c.subscribe(topic, { qos: 1 }, (err) => resolve(err != null)));
    t.equal(await refused('devices/test/plant/meter-1/command'), false, 'own command topic granted');
    t.equal(await refused('devices/test/lobby/lock-1/command'), true, "another device's command topic refused");
    t.equal(await refused('#'), true, 'wildcards refused');
    // Prove the refusal is real: a command for lock-1 must not reach meter-1.
    const received: string[] = [];
    c.on('message', (topic) => received.push(topic));
    await api(g.httpUrl, '/api/v1/devices/lock-1/commands', g.adminToken, { method: 'POST', body: { action: 'unlock' } });
    await api(g.httpUrl, '/api/v1/devices/meter-1/commands', g.adminToken, { method: 'POST', body: { action: 'read' } });
    await waitFor(() => (received.length > 0 ? true : undefined), 'own command');
    t.same(received, ['devices/test/plant/meter-1/command'], 'only its own command arrived');
    t.equal(c.connected, true, 'a refused subscribe does not disconnect');
    t.ok(metricValue(await metrics(), 'outpost_auth_failures_total', { reason: 'subscribe_denied' }) >= 2);
  });

  t.test('commands from the API reach the device on its command topic', async (t) => {
    const c = await connect(g.mqttPort, { username: 'meter-1', password: 's3cret-2' });
    t.teardown(() => endClient(c));
    await c.subscribeAsync('devices/test/plant/meter-1/command', { qos: 1 });
    const got = new Promise<{ action: string; args: { relay: number } }>((resolve) =>
      c.once('message', (_topic, payload) => resolve(JSON.parse(payload.toString()) as { action: string; args: { relay: number } })),
    );
    const res = await api<{ ok: boolean }>(g.httpUrl, '/api/v1/devices/meter-1/commands', g.adminToken, {
      method: 'POST',
      body: { action: 'open', args: { relay: 2 } },
    });
    t.equal(res.status, 202);
    const cmd = await got;
    t.equal(cmd.action, 'open');
    t.equal(cmd.args.relay, 2);
    t.ok((await events('command.sent')).length >= 1, 'command audited as an event');
  });

  t.test('a Last Will on the status topic marks the device offline', async (t) => {
    const c = await connect(g.mqttPort, {
      username: 'lock-1',
      password: 's3cret-1',
      will: { topic: 'devices/test/lobby/lock-1/status', payload: Buffer.from('offline'), qos: 1, retain: false },
    });
    const before = (await events('device.offline')).length;
    c.stream.destroy(); // ungraceful: the broker publishes the will
    await waitFor(async () => ((await events('device.offline')).length > before ? true : undefined), 'offline after will');
    const devicesList = (await api<{ devices: { id: string; online: boolean }[] }>(g.httpUrl, '/api/v1/devices', g.adminToken)).body
      .devices;
    t.equal(devicesList.find((d) => d.id === 'lock-1')?.online, false);
    c.end(true);
  });
});

t.test('anonymous loopback policy allows local tools', async (t) => {
  const g = await startGateway({ drivers: { mqtt: { anonymous: 'loopback' } } });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const c = await connect(g.mqttPort);
  await publish(c, 'devices/test/any/tool/telemetry', JSON.stringify({ v: 7 }));
  const rows = (await api<{ readings: ReadingRow[] }>(g.httpUrl, '/api/v1/readings?device=tool', g.adminToken)).body.readings;
  t.same(
    rows.map((r) => r.value),
    [7],
  );
  await endClient(c);
});
