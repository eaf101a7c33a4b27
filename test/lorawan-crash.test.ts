// Acknowledged means durable, for LoRaWAN: the gateway runs as a child process; an OTAA
// device joins, then sends confirmed uplinks, each retransmitted (same FCnt) until its ACK
// arrives, as a real device does; the gateway is kill -9'd after a random number of ACKs.
// Afterwards every ACKed uplink is stored, and none twice. The join itself survives the
// kills (the session was on disk before the JoinAccept left).
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { buildDataUplink, buildJoinRequest, deriveSessionKeys, openJoinAccept, parseDataDownlink } from './helpers/lorawan-crypto.js';
import { ForwarderPeer } from './helpers/lorawan-peer.js';
import { api, freePort, removeDir, tempDir, waitFor } from './helpers/gateway.js';
import { alive, exited, spawnCli, type Child } from './helpers/sync-child.js';

const ROUNDS = 3;
const GW = 'aa555a0000000101';
const APP_KEY = '000102030405060708090a0b0c0d0e0f';
const DEV_EUI = '70b3d57ed00000aa';

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

t.test('kill -9: every ACKed LoRaWAN uplink is stored once', async (t) => {
  const dir = tempDir('outpost-lora-crash-');
  t.teardown(() => removeDir(dir));
  const [udpPort, httpPort] = [await freeUdpPort(), await freePort()];
  const configPath = join(dir, 'site.yaml');
  writeFileSync(
    configPath,
    stringify({
      site: 'lora',
      dataDir: join(dir, 'data'),
      http: { host: '127.0.0.1', port: httpPort },
      drivers: {
        mqtt: { enabled: false },
        lorawan: { enabled: true, host: '127.0.0.1', port: udpPort, gateways: [{ eui: GW }], dedupWindowMs: 20 },
      },
      devices: [{ id: 'meter', zone: 'z', lorawan: { devEui: DEV_EUI, appKey: APP_KEY } }],
    }),
    { mode: 0o600 }, // it holds a key inline
  );
  const url = `http://127.0.0.1:${httpPort}`;
  let child: Child | null = null;
  t.teardown(() => void child?.proc.kill('SIGKILL'));
  const start = async () => {
    child = spawnCli(['run', '--config', configPath]);
    await waitFor(
      async () => ((await api(url, '/health').catch(() => ({ status: 0 }))).status === 200 ? true : undefined),
      'health',
      15_000,
    );
    const peer = await ForwarderPeer.start({ gatewayEui: GW, server: { host: '127.0.0.1', port: udpPort }, ackTimeoutMs: 1000 });
    await peer.pullData();
    return peer;
  };

  let peer = await start();
  await peer.pushUplink(buildJoinRequest({ appKey: APP_KEY, joinEui: '0000000000000000', devEui: DEV_EUI, devNonce: 7 }));
  const ja = openJoinAccept((await peer.nextDownlink(8000)).phy, APP_KEY);
  t.ok(ja.micOk, 'joined');
  const keys = deriveSessionKeys(APP_KEY, ja.appNonce, ja.netId, 7);

  const acked: number[] = [];
  let fCnt = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    if (round > 1) peer = await start();
    const target = 5 + Math.floor(Math.random() * 25);
    let got = 0;
    let tries = 0;
    // Send; a missing ACK (or PUSH_ACK) means "retransmit this counter", as a device would.
    while (got < target && tries++ < target * 4) {
      const phy = buildDataUplink({ devAddr: ja.devAddr, fCnt, confirmed: true, fPort: 3, payload: Buffer.from([fCnt & 0xff]), ...keys });
      const ok = await peer
        .pushUplink(phy)
        .then(() => peer.nextDownlink(1500))
        .then((d) => parseDataDownlink(d.phy, keys).ack)
        .catch(() => false);
      if (!ok) continue;
      acked.push(fCnt++);
      got++;
    }
    // kill -9 with the next uplink possibly in flight (ACKed or not: the device retransmits it).
    void peer
      .pushUplink(buildDataUplink({ devAddr: ja.devAddr, fCnt, confirmed: true, fPort: 3, payload: Buffer.from([fCnt & 0xff]), ...keys }))
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 30)));
    child!.proc.kill('SIGKILL');
    await exited(child!.proc);
    await peer.close();
    t.equal(got, target, `round ${round}: ${target} ACKs before kill -9`);
  }

  peer = await start();
  t.teardown(() => peer.close());
  const token = readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
  const rows = (
    await api<{ rows: [number, number][] }>(url, '/api/v1/query', token, {
      method: 'POST',
      body: { sql: "SELECT value::BIGINT, count(*)::BIGINT FROM readings WHERE device = 'meter' AND point = 'lora.fcnt' GROUP BY 1" },
    })
  ).body.rows;
  const byFCnt = new Map(rows.map(([f, c]) => [Number(f), Number(c)]));
  t.same(
    acked.filter((f) => !byFCnt.has(f)),
    [],
    `all ${acked.length} ACKed uplinks stored`,
  );
  t.same(
    [...byFCnt].filter(([, c]) => c > 1),
    [],
    'none stored twice',
  );
  const c = child as Child | null;
  if (c && alive(c.proc)) {
    c.proc.kill('SIGTERM');
    t.equal(await exited(c.proc), 0, 'SIGTERM exits cleanly');
  }
  child = null;
});
