// The broker's other listeners: MQTT over TLS and over WebSocket, both ingesting with
// the same guarantees as plain TCP.
import { chmodSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../config/site.js';
import type { ReadingRow } from '../gateway/store/queries.js';
import { hashPassword } from '../gateway/kernel/secrets.js';
import { api, connect, endClient, publish, removeDir, startGateway, tempDir } from './helpers/gateway.js';
import { mqtt } from '../drivers/mqtt/index.js';

const TLS_DIR = join(PACKAGE_ROOT, 'test', 'fixtures', 'tls');

t.test('TLS and WebSocket listeners', async (t) => {
  // git keeps the fixture key 0644; the gateway refuses a world-readable key (secret-files.ts).
  const keyDir = tempDir();
  copyFileSync(join(TLS_DIR, 'key.pem'), join(keyDir, 'key.pem'));
  chmodSync(join(keyDir, 'key.pem'), 0o600);
  const g = await startGateway({
    devices: [{ id: 'tls-dev', zone: 'z', mqtt: { username: 'tls-dev', passwordHash: await hashPassword('pw') } }],
    drivers: {
      mqtt: {
        tls: { port: 0, cert: join(TLS_DIR, 'cert.pem'), key: join(keyDir, 'key.pem') },
        websocket: { port: 0 },
      },
    },
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
    removeDir(keyDir);
  });
  const ports = g.gw.supervisor.instanceOf(mqtt)!.ports!;
  t.ok(ports.tls && ports.ws, `listening: ${JSON.stringify(ports)}`);
  const readings = async (device: string) =>
    (await api<{ readings: ReadingRow[] }>(g.httpUrl, `/api/v1/readings?device=${device}`, g.adminToken)).body.readings;

  const tls = await connect(ports.tls!, {
    protocol: 'mqtts',
    ca: readFileSync(join(TLS_DIR, 'cert.pem')),
    servername: 'localhost',
    username: 'tls-dev',
    password: 'pw',
  });
  await publish(tls, 'devices/test/z/tls-dev/telemetry', JSON.stringify({ secure: 1 }));
  await endClient(tls);
  t.same(
    (await readings('tls-dev')).map((r) => r.value),
    [1],
    'QoS1 over TLS stored before PUBACK',
  );

  // The loopback rule must see the real peer address behind TLS: anonymous from 127.0.0.1 works.
  const anonTls = await connect(ports.tls!, { protocol: 'mqtts', ca: readFileSync(join(TLS_DIR, 'cert.pem')), servername: 'localhost' });
  await publish(anonTls, 'devices/test/z/anon-tls/telemetry', '{"x": 2}');
  await endClient(anonTls);
  t.same(
    (await readings('anon-tls')).map((r) => r.value),
    [2],
    'anonymous TLS from loopback accepted',
  );

  const ws = await connect(ports.ws!, { protocol: 'ws', path: '/' });
  await publish(ws, 'devices/test/z/ws-dev/telemetry', JSON.stringify({ via: 'ws' }));
  await endClient(ws);
  t.same(
    (await readings('ws-dev')).map((r) => r.value),
    ['ws'],
    'QoS1 over WebSocket stored (anonymous from loopback)',
  );
});
