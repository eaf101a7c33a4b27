// Interop with a client we did not write: mosquitto_pub / mosquitto_sub (Debian's
// mosquitto-clients, installed by .ci/run), as a newcomer and an installer would use them.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { hashPassword } from '../gateway/kernel/secrets.js';
import type { ReadingRow } from '../gateway/store/queries.js';
import { api, removeDir, startGateway, waitFor } from './helpers/gateway.js';

const run = promisify(execFile);

t.test('mosquitto_pub and mosquitto_sub against the embedded broker', async (t) => {
  const g = await startGateway({
    devices: [{ id: 'relay-1', zone: 'door', mqtt: { username: 'relay-1', passwordHash: await hashPassword('pw-relay') } }],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const port = String(g.mqttPort);
  const readings = async (device: string) =>
    (await api<{ readings: ReadingRow[] }>(g.httpUrl, `/api/v1/readings?device=${device}`, g.adminToken)).body.readings;

  await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-q', '1', '-t', 'devices/test/hall/stock/telemetry', '-m', '{"temp": 22.5}']);
  t.same(
    (await readings('stock')).map((r) => [r.point, r.value]),
    [['temp', 22.5]],
    'anonymous loopback publish stored',
  );

  await run('mosquitto_pub', [
    '-h',
    '127.0.0.1',
    '-p',
    port,
    '-q',
    '1',
    '-u',
    'relay-1',
    '-P',
    'pw-relay',
    '-t',
    'devices/test/door/relay-1/telemetry/state',
    '-m',
    '1',
  ]);
  t.same(
    (await readings('relay-1')).map((r) => [r.point, r.value]),
    [['state', 1]],
    'authenticated plain-number publish stored',
  );

  const refused = await run('mosquitto_pub', [
    '-h',
    '127.0.0.1',
    '-p',
    port,
    '-u',
    'relay-1',
    '-P',
    'wrong',
    '-t',
    'devices/test/door/relay-1/telemetry',
    '-m',
    '{}',
  ]).then(
    () => 0,
    (err: { code: number }) => err.code,
  );
  t.not(refused, 0, 'a wrong password makes mosquitto_pub fail');

  // The device waits for a command the way a relay board's firmware would.
  const sub = spawn('mosquitto_sub', [
    '-h',
    '127.0.0.1',
    '-p',
    port,
    '-q',
    '1',
    '-u',
    'relay-1',
    '-P',
    'pw-relay',
    '-t',
    'devices/test/door/relay-1/command',
    '-C',
    '1',
    '-W',
    '10',
  ]);
  let out = '';
  sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => sub.once('exit', resolve));
  await waitFor(async () => {
    const clients = (await api<{ drivers: { mqtt: { clients: number } } }>(g.httpUrl, '/api/v1/status', g.adminToken)).body.drivers.mqtt
      .clients;
    return clients >= 1 ? true : undefined;
  }, 'mosquitto_sub connected');
  await new Promise((r) => setTimeout(r, 200)); // let its SUBSCRIBE land after CONNECT
  const res = await api(g.httpUrl, '/api/v1/devices/relay-1/commands', g.adminToken, {
    method: 'POST',
    body: { action: 'unlock', args: { seconds: 5 } },
  });
  t.equal(res.status, 202);
  t.equal(await exited, 0, 'mosquitto_sub got one message and exited');
  const cmd = JSON.parse(out) as { action: string; args: { seconds: number }; requestedBy: string };
  t.equal(cmd.action, 'unlock');
  t.equal(cmd.args.seconds, 5);
  t.equal(cmd.requestedBy, 'api:generated-admin');
});
