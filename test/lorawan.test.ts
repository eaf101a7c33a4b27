// The LoRaWAN network server end to end over real UDP on loopback: a GWMP packet
// forwarder peer (test/helpers/lorawan-peer.ts) with frames built by the test's own
// LoRaWAN 1.0.x implementation (test/helpers/lorawan-crypto.ts, checked against
// published vectors), never by the driver's code.
import t, { type Test } from 'tap';
import { buildDataUplink, buildJoinRequest, deriveSessionKeys, openJoinAccept, parseDataDownlink } from './helpers/lorawan-crypto.js';
import { ForwarderPeer } from './helpers/lorawan-peer.js';
import { outpost } from './helpers/cli.js';
import { api, metricValue, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, PACKAGE_ROOT, parseConfig } from '../config/site.js';
import { lorawan } from '../drivers/lorawan/index.js';

const GW1 = 'aa555a0000000101';
const GW2 = 'aa555a0000000102';
const APP_KEY = '2b7e151628aed2a6abf7158809cf4f3c';
const OTAA_EUI = '70b3d57ed0001234';
const JOIN_EUI = '0000000000000001';
const ABP = { devAddr: '26011bda', nwkSKey: '44024241ed4ce9a68c6a8bc055233fd3', appSKey: 'ec925802ae430ca77fd3dd73cb2cc588' };
const ABP_KEYS = { nwkSKey: ABP.nwkSKey, appSKey: ABP.appSKey };

function site(dir: string) {
  return {
    dataDir: dir,
    drivers: {
      lorawan: {
        enabled: true,
        host: '127.0.0.1',
        port: 0,
        gateways: [{ eui: GW1, name: 'gw-1' }, { eui: GW2 }],
        dedupWindowMs: 150,
        profiles: { raw: { codec: 'none' } },
      },
    },
    devices: [
      { id: 'otaa-1', zone: 'z', lorawan: { devEui: OTAA_EUI, joinEui: JOIN_EUI, appKey: APP_KEY, profile: 'raw' } },
      { id: 'abp-1', zone: 'z', lorawan: { devEui: '70b3d57ed0005678', activation: 'abp', ...ABP, profile: 'raw' } },
    ],
  };
}

async function peerFor(g: TestGateway, eui = GW1): Promise<ForwarderPeer> {
  const port = g.gw.supervisor.instanceOf(lorawan)!.port!;
  const peer = await ForwarderPeer.start({ gatewayEui: eui, server: { host: '127.0.0.1', port } });
  await peer.pullData();
  return peer;
}

/** A gateway on a fresh data dir with one forwarder that has pulled; all torn down after the test. */
async function rig(t: Test, cfg: (dir: string) => ReturnType<typeof site> = site): Promise<{ g: TestGateway; peer: ForwarderPeer }> {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const g = await startGateway(cfg(dir), dir);
  t.teardown(() => g.stop());
  const peer = await peerFor(g);
  t.teardown(() => peer.close());
  return { g, peer };
}

/** Waits until the driver has counted `n` refusals for `reason`. */
const rejected = (g: TestGateway, reason: string, n = 1) =>
  waitFor(
    async () =>
      metricValue((await api<string>(g.httpUrl, '/metrics')).body, 'outpost_rejects_total', { driver: 'lorawan', reason }) === n ||
      undefined,
    `${n} × ${reason}`,
  );

async function sql(g: TestGateway, q: string): Promise<unknown[][]> {
  const r = await api<{ rows: unknown[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql: q } });
  return r.body.rows;
}

/** The newest value of each point of a device (numbers as numbers, text as text). */
const readingsOf = async (g: TestGateway, device: string): Promise<Record<string, unknown>> => {
  const rows = await sql(g, `SELECT point, text, value FROM readings WHERE device = '${device}' ORDER BY seq`);
  const out: Record<string, unknown> = {};
  for (const r of rows) out[String(r[0])] = r[1] ?? r[2];
  return out;
};

t.test('OTAA join (JoinAccept at tmst + 5 s), uplink, restart: no rejoin needed', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  let g = await startGateway(site(dir), dir);
  let peer = await peerFor(g);
  const tmst = 1_000_000;
  await peer.pushUplink(buildJoinRequest({ appKey: APP_KEY, joinEui: JOIN_EUI, devEui: OTAA_EUI, devNonce: 0x1234 }), { tmst });
  const dl = await peer.nextDownlink(3000);
  t.equal(dl.txpk.tmst, tmst + 5_000_000, 'JoinAccept timed at JOIN_ACCEPT_DELAY1 after the uplink');
  t.equal(dl.txpk.freq, 868.1, 'EU868 RX1: the uplink frequency');
  t.equal(dl.txpk.datr, 'SF7BW125', 'RX1 data rate = uplink DR with offset 0');
  t.equal(dl.txpk.ipol, true, 'downlinks use inverted polarity');
  const ja = openJoinAccept(dl.phy, APP_KEY);
  t.ok(ja.micOk, 'JoinAccept MIC checks with the AppKey');
  t.equal(ja.cfList?.length, 16, 'EU868 JoinAccept carries a CFList');
  const keys = deriveSessionKeys(APP_KEY, ja.appNonce, ja.netId, 0x1234);

  const up = (fCnt: number, payload: string, confirmed = false) =>
    buildDataUplink({ devAddr: ja.devAddr, fCnt, confirmed, fPort: 2, payload: Buffer.from(payload, 'hex'), ...keys });
  await peer.pushUplink(up(0, 'cafe'));
  await waitFor(async () => (await readingsOf(g, 'otaa-1')).payload === 'cafe' || undefined, 'the first uplink stored');
  const devs = await api<{ devices: { id: string; joined: boolean; fCntUp: number | null; devAddr: string }[] }>(
    g.httpUrl,
    '/api/v1/lorawan/devices',
    g.adminToken,
  );
  t.match(
    devs.body.devices.find((d) => d.id === 'otaa-1'),
    { joined: true, fCntUp: 0, devAddr: ja.devAddr.toString('hex') },
  );

  await peer.close();
  await g.stop();
  g = await startGateway(site(dir), dir);
  t.teardown(() => g.stop());
  peer = await peerFor(g);
  t.teardown(() => peer.close());
  await peer.pushUplink(up(1, 'beef'));
  await waitFor(
    async () => (await readingsOf(g, 'otaa-1')).payload === 'beef' || undefined,
    'an uplink after the restart stored, without a rejoin',
  );
  await peer.pushUplink(buildJoinRequest({ appKey: APP_KEY, joinEui: JOIN_EUI, devEui: OTAA_EUI, devNonce: 0x1234 }));
  await rejected(g, 'devnonce_replay'); // a replayed DevNonce, refused after the restart
});

t.test('confirmed uplink: ACK after the commit; queued downlink in RX1; replay and retransmission', async (t) => {
  const { g, peer } = await rig(t);
  const keys = { nwkSKey: ABP.nwkSKey, appSKey: ABP.appSKey };
  const up = (fCnt: number, confirmed: boolean, payload = '01') =>
    buildDataUplink({ devAddr: ABP.devAddr, fCnt, confirmed, fPort: 1, payload: Buffer.from(payload, 'hex'), ...keys });

  await peer.pushUplink(up(65_535, false), { tmst: 3_000_000 });
  await waitFor(async () => (await readingsOf(g, 'abp-1'))['lora.fcnt'] === 65_535 || undefined, 'the first uplink stored');
  // The counter rolls over the 16 bits on air: 65 536 is sent as 0 and rebuilt.
  await peer.pushUplink(up(65_536, true, '0102'), { tmst: 5_000_000 });
  const ack = await peer.nextDownlink(3000);
  const stored = await readingsOf(g, 'abp-1');
  t.equal(stored['lora.fcnt'], 65_536, 'the uplink was committed when its ACK left (32-bit counter)');
  t.equal(ack.txpk.tmst, 6_000_000, 'ACK in RX1, one second after the uplink');
  const a = parseDataDownlink(ack.phy, keys);
  t.ok(a.micOk && a.ack, 'a valid downlink with ACK set');

  // The same confirmed frame again (its ACK was missed): acknowledged again, stored once.
  await peer.pushUplink(up(65_536, true, '0102'), { tmst: 7_000_000 });
  const again = await peer.nextDownlink(3000);
  t.ok(parseDataDownlink(again.phy, keys).ack, 'a retransmission is acknowledged again');
  const rows = await sql(g, "SELECT count(*)::INTEGER FROM readings WHERE device = 'abp-1' AND point = 'lora.fcnt' AND value = 65536");
  t.equal(rows[0][0], 1, 'and stored once');

  const cmd = await api<{ ok: boolean; detail: string }>(g.httpUrl, '/api/v1/devices/abp-1/commands', g.adminToken, {
    method: 'POST',
    body: { action: 'downlink', args: { fPort: 10, hex: 'a1b2c3' } },
  });
  t.equal(cmd.status, 202, JSON.stringify(cmd.body));
  await peer.pushUplink(up(65_537, false), { tmst: 9_000_000 });
  const data = await peer.nextDownlink(3000);
  const d = parseDataDownlink(data.phy, keys);
  t.same([d.micOk, d.fPort, d.payload.toString('hex')], [true, 10, 'a1b2c3'], 'the queued downlink rides the next RX1');

  await peer.pushUplink(up(65_530, false));
  await rejected(g, 'replayed_fcnt'); // an old counter
});

t.test('two gateways hear one uplink: one reading set, both gateways kept', async (t) => {
  const { g, peer: p1 } = await rig(t);
  const p2 = await peerFor(g, GW2);
  t.teardown(() => p2.close());
  const phy = buildDataUplink({
    devAddr: ABP.devAddr,
    fCnt: 5,
    confirmed: false,
    fPort: 1,
    payload: Buffer.from('aa', 'hex'),
    ...ABP_KEYS,
  });
  await Promise.all([p1.pushUplink(phy, { rssi: -80, lsnr: 2 }), p2.pushUplink(phy, { rssi: -60, lsnr: 8 })]);
  const r = await waitFor(async () => {
    const x = await readingsOf(g, 'abp-1');
    return x['lora.gateways'] ? x : undefined;
  }, 'the uplink stored');
  t.equal(r['lora.gateways'], 2);
  t.equal(r['lora.rssi'], -60, 'best copy');
  t.same([r['lora.rssi.gw-1'], r[`lora.rssi.${GW2}`]], [-80, -60], "each gateway's RSSI");
  const n = await sql(g, "SELECT count(*)::INTEGER FROM readings WHERE device = 'abp-1' AND point = 'payload'");
  t.equal(n[0][0], 1, 'payload stored once');
});

t.test('bad input is counted by reason and nothing breaks', async (t) => {
  const { g, peer } = await rig(t);
  const port = g.gw.supervisor.instanceOf(lorawan)!.port!;
  const stranger = await ForwarderPeer.start({ gatewayEui: 'ffffffffffffffff', server: { host: '127.0.0.1', port }, ackTimeoutMs: 500 });
  t.match(await stranger.pullData().catch((e: Error) => e), Error, 'an unknown gateway gets no PULL_ACK');
  await stranger.close();

  const eui = Buffer.from(GW1, 'hex');
  await peer.sendRaw(Buffer.from([2, 0]));
  await peer.sendRaw(Buffer.concat([Buffer.from([2, 0, 1, 0]), eui, Buffer.from('{"rxpk": [')]));
  const good = (fCnt: number) =>
    buildDataUplink({ devAddr: ABP.devAddr, fCnt, confirmed: false, fPort: 1, payload: Buffer.from('01', 'hex'), ...ABP_KEYS });
  const badMic = good(1);
  badMic[badMic.length - 1] ^= 0xff;
  await peer.pushUplink(badMic);
  await peer.pushUplink(
    buildDataUplink({ devAddr: '01020304', fCnt: 1, confirmed: false, fPort: 1, payload: Buffer.from('01', 'hex'), ...ABP_KEYS }),
  );
  await peer.pushUplink(Buffer.from('40010203', 'hex'));
  await peer.pushUplink(Buffer.concat([Buffer.from('40', 'hex'), Buffer.alloc(300)]));
  await peer.pushUplink(good(2));
  const expect = { gwmp_truncated: 1, gwmp_bad_json: 1, bad_mic: 1, unknown_devaddr: 1, bad_frame: 1, unknown_gateway: 1, oversize: 1 };
  const got = await waitFor(async () => {
    const m = (await api<string>(g.httpUrl, '/metrics')).body;
    const r = Object.fromEntries(
      Object.keys(expect).map((k) => [k, metricValue(m, 'outpost_rejects_total', { driver: 'lorawan', reason: k })]),
    );
    return Object.values(r).every((v) => v > 0) ? r : undefined;
  }, 'every refusal counted');
  t.same(got, expect);
  await waitFor(async () => (await readingsOf(g, 'abp-1'))['lora.fcnt'] === 2 || undefined, 'a good uplink after all that is stored');
});

t.test('codecs: Cayenne LPP decoded to points; a codec that loops is stopped, counted, and the payload kept', async (t) => {
  const { g, peer } = await rig(t, (dir) => {
    const cfg = site(dir);
    cfg.drivers.lorawan.profiles = {
      raw: { codec: 'lpp' },
      // @ts-expect-error -- a second profile name the test adds
      hostile: { codec: join(PACKAGE_ROOT, 'test/fixtures/lorawan-codecs/loop.js') },
    };
    (cfg.devices[0].lorawan as Record<string, unknown>).profile = 'hostile';
    return cfg;
  });
  // LPP: channel 1 temperature 27.2 °C (0x0110), channel 2 humidity 50 % (0x64).
  await peer.pushUplink(
    buildDataUplink({
      devAddr: ABP.devAddr,
      fCnt: 1,
      confirmed: false,
      fPort: 1,
      payload: Buffer.from('016701100268' + '64', 'hex'),
      ...ABP_KEYS,
    }),
  );
  const r = await waitFor(async () => {
    const x = await readingsOf(g, 'abp-1');
    return x.temperature_1 !== undefined ? x : undefined;
  }, 'LPP readings');
  t.same([r.temperature_1, r.humidity_2], [27.2, 50], 'LPP decoded');

  // The OTAA device's profile runs a codec that never returns.
  await peer.pushUplink(buildJoinRequest({ appKey: APP_KEY, joinEui: JOIN_EUI, devEui: OTAA_EUI, devNonce: 1 }));
  const ja = openJoinAccept((await peer.nextDownlink(3000)).phy, APP_KEY);
  const keys = deriveSessionKeys(APP_KEY, ja.appNonce, ja.netId, 1);
  await peer.pushUplink(
    buildDataUplink({ devAddr: ja.devAddr, fCnt: 0, confirmed: false, fPort: 1, payload: Buffer.from('0102', 'hex'), ...keys }),
  );
  const hex = await waitFor(async () => (await readingsOf(g, 'otaa-1')).payload, 'the undecoded payload kept');
  t.equal(hex, '0102');
  const m = (await api<string>(g.httpUrl, '/metrics')).body;
  t.equal(metricValue(m, 'outpost_rejects_total', { driver: 'lorawan', reason: 'codec_timeout' }), 1, 'counted as a codec timeout');
  await peer.pushUplink(
    buildDataUplink({ devAddr: ABP.devAddr, fCnt: 2, confirmed: false, fPort: 1, payload: Buffer.from('0167ffd7', 'hex'), ...ABP_KEYS }),
  );
  await waitFor(async () => (await readingsOf(g, 'abp-1')).temperature_1 === -4.1 || undefined, 'other devices carry on');
});

t.test('outpost validate: LoRaWAN keys, EUIs, activation and profiles are checked with their paths', async (t) => {
  const problems = (devices: unknown[], lorawanCfg: Record<string, unknown> = {}): string[] => {
    try {
      parseConfig(stringify({ site: 's', drivers: { lorawan: { enabled: true, ...lorawanCfg } }, devices }), 'site.yaml');
    } catch (err) {
      if (err instanceof ConfigError) return err.message.split('\n');
      throw err;
    }
    return [];
  };
  const dev = (id: string, l: Record<string, unknown>) => ({
    id,
    zone: 'z',
    lorawan: { devEui: '70b3d57ed0000001', appKey: APP_KEY, ...l },
  });
  t.match(problems([dev('a', { appKey: '00112233' })]).join('\n'), /devices\[0\]\.lorawan\.appKey: .*32 hex digits/, 'a short AppKey');
  t.match(
    problems([dev('a', { devEui: 'zz' })]).join('\n'),
    /devices\[0\]\.lorawan\.devEui: .*16 hex digits/,
    'a DevEUI that is not 16 hex digits',
  );
  t.match(
    problems([dev('a', {}), dev('b', {})]).join('\n'),
    /devices\[1\]\.lorawan\.devEui: DevEUI 70b3d57ed0000001 is already used by devices\[0\]/,
  );
  t.match(problems([dev('a', { appKey: undefined })]).join('\n'), /an OTAA device needs appKey/);
  t.match(problems([dev('a', { activation: 'abp', appKey: undefined, devAddr: '01020304' })]).join('\n'), /an ABP device needs nwkSKey/);
  t.match(problems([dev('a', { profile: 'nope' })]).join('\n'), /no profile "nope"/);
  t.match(
    problems([], { profiles: { p: { codec: '/nonexistent/codec.js' } } }).join('\n'),
    /codec file \/nonexistent\/codec.js does not exist/,
  );
  t.same(problems([dev('a', { appKey: { env: 'LORA_KEY' } })]), [], 'a key may name an environment variable');
});

t.test('MAC commands answered in FOpts; the CLI queues a downlink and lists devices and gateways', async (t) => {
  const { g, peer } = await rig(t);
  const api = ['--url', g.httpUrl, '--token', g.adminToken];

  const q = await outpost(['lorawan', 'downlink', 'abp-1', '--port', '7', '--hex', '0a0b0c', ...api]);
  t.match(q.stdout, /queued \(position 1\)/, q.stderr);
  // LinkCheckReq (0x02) and DeviceTimeReq (0x0D) in FOpts of an unconfirmed uplink.
  const before = Date.now();
  const phy = buildDataUplink({
    devAddr: ABP.devAddr,
    fCnt: 3,
    confirmed: false,
    fOpts: Buffer.from([0x02, 0x0d]),
    fPort: 1,
    payload: Buffer.from('01', 'hex'),
    ...ABP_KEYS,
  });
  await peer.pushUplink(phy, { lsnr: 5, datr: 'SF7BW125' });
  const d = parseDataDownlink((await peer.nextDownlink(3000)).phy, ABP_KEYS);
  t.ok(d.micOk, 'downlink MIC');
  t.equal(d.fOpts[0], 0x02, 'LinkCheckAns first');
  t.equal(d.fOpts[1], 13, 'margin: SNR 5 dB above the SF7 floor of -7.5 dB, rounded');
  t.equal(d.fOpts[2], 1, 'one gateway heard it');
  t.equal(d.fOpts[3], 0x0d, 'then DeviceTimeAns');
  const gpsSeconds = d.fOpts.readUInt32LE(4);
  const expected = (before - Date.UTC(1980, 0, 6)) / 1000 + 18;
  t.ok(Math.abs(gpsSeconds - expected) < 3, `GPS time ${gpsSeconds} ≈ ${expected.toFixed(0)}`);
  t.same([d.fPort, d.payload.toString('hex')], [7, '0a0b0c'], 'and the queued downlink from the CLI rides along');

  const devices = await outpost(['lorawan', 'devices', ...api]);
  t.match(devices.stdout, /abp-1 70b3d57ed0005678 joined as 26011bda, last uplink .* \(FCnt 3, RSSI -42, SNR 5, 1 gateways\)/);
  const gws = await outpost(['lorawan', 'gateways', ...api]);
  t.match(gws.stdout, /gw-1 \(aa555a0000000101\) online/);
  const status = await outpost(['status', ...api]);
  t.match(status.stdout, /driver lorawan: running\n {2}udp \d+, EU868; gateways 1\/2 online: gw-1 online/);
});

t.test('keys stay secret: not in logs, /metrics, the LoRaWAN routes or status', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const lines: string[] = [];
  const g = await startGateway({ ...site(dir), log: { level: 'debug' } }, dir, { logLines: lines });
  t.teardown(() => g.stop());
  const peer = await peerFor(g);
  t.teardown(() => peer.close());
  await peer.pushUplink(buildJoinRequest({ appKey: APP_KEY, joinEui: JOIN_EUI, devEui: OTAA_EUI, devNonce: 9 }));
  const ja = openJoinAccept((await peer.nextDownlink(3000)).phy, APP_KEY);
  const keys = deriveSessionKeys(APP_KEY, ja.appNonce, ja.netId, 9);
  const seen = [
    lines.join('\n'),
    (await api<string>(g.httpUrl, '/metrics')).body,
    JSON.stringify((await api(g.httpUrl, '/api/v1/lorawan/devices', g.adminToken)).body),
    JSON.stringify((await api(g.httpUrl, '/api/v1/status', g.adminToken)).body),
  ]
    .join('\n')
    .toLowerCase();
  for (const [name, key] of Object.entries({
    appKey: APP_KEY,
    nwkSKey: ABP.nwkSKey,
    appSKey: ABP.appSKey,
    sessionNwk: keys.nwkSKey.toString('hex'),
    sessionApp: keys.appSKey.toString('hex'),
  })) {
    t.notOk(seen.includes(key.toLowerCase()), `${name} appears nowhere`);
  }
  t.ok(lines.length > 0, 'there were log lines to look at');
  t.equal(statSync(join(dir, 'lorawan', 'sessions.json')).mode & 0o777, 0o600, 'the session file (it holds session keys) is 0600');
});
