// MQTT ingest against the real embedded broker, real DuckDB file and mqtt.js clients.
import t from 'tap';
import type { ReadingRow } from '../gateway/store/queries.js';
import { api, connect, endClient, metricValue, publish, startGateway, waitFor, removeDir } from './helpers/gateway.js';

const TOPIC = (device: string) => `devices/test/lab/${device}/telemetry`;

t.test('MQTT ingest', async (t) => {
  const g = await startGateway();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const client = await connect(g.mqttPort);
  t.teardown(() => endClient(client));
  const readings = async (device: string) =>
    (await api<{ readings: ReadingRow[] }>(g.httpUrl, `/api/v1/readings?device=${device}`, g.adminToken)).body.readings;

  // QoS1: PUBACK comes after commit, so the rows are queryable the moment publish() resolves.
  t.test('JSON object of point → value, with ts', async (t) => {
    const ts = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    await publish(client, TOPIC('obj'), JSON.stringify({ temp: 21.5, door: true, mode: 'eco', ts }));
    const rows = await readings('obj');
    t.same(rows.map((r) => [r.point, r.value, r.ts]).sort(), [
      ['door', true, new Date(ts).toISOString()],
      ['mode', 'eco', new Date(ts).toISOString()],
      ['temp', 21.5, new Date(ts).toISOString()],
    ]);
  });

  t.test('JSON object without ts uses receive time; value objects carry unit and quality', async (t) => {
    const before = Date.now();
    await publish(client, TOPIC('vobj'), JSON.stringify({ flow: { value: 3.25, unit: 'm3/h', quality: 'uncertain' } }));
    const [r] = await readings('vobj');
    t.equal(r?.value, 3.25);
    t.equal(r?.unit, 'm3/h');
    t.equal(r?.quality, 'uncertain');
    t.ok(Date.parse(r.ts) >= before - 1 && Date.parse(r.ts) <= Date.now(), 'ts is the receive time');
  });

  t.test('JSON array of objects', async (t) => {
    const payload = [
      { temp: 20, ts: '2026-01-01T00:00:00Z' },
      { temp: 21, ts: '2026-01-01T00:01:00Z' },
      { temp: 22, hum: 50, ts: 1767225720 }, // epoch seconds
    ];
    await publish(client, TOPIC('arr'), JSON.stringify(payload));
    const rows = await readings('arr');
    t.same(
      rows.map((r) => [r.ts, r.point, r.value]),
      [
        ['2026-01-01T00:00:00.000Z', 'temp', 20],
        ['2026-01-01T00:01:00.000Z', 'temp', 21],
        ['2026-01-01T00:02:00.000Z', 'temp', 22],
        ['2026-01-01T00:02:00.000Z', 'hum', 50],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
  });

  t.test('SenML JSON with base name, base time and units', async (t) => {
    const bt = Date.UTC(2026, 0, 1) / 1000;
    const senml = [
      { bn: 'urn:dev:mac:0024befffe804ff1:', bt, bu: 'Cel', n: 'temp', v: 23.1 },
      { n: 'temp', t: 10, v: 23.4 },
      { n: 'open', vb: false, t: 10 },
      { n: 'label', vs: 'north', u: 'txt' },
    ];
    await publish(client, TOPIC('senml'), JSON.stringify(senml));
    const rows = await readings('senml');
    t.same(
      rows.map((r) => [r.ts, r.point, r.value, r.unit]),
      [
        ['2026-01-01T00:00:00.000Z', 'temp', 23.1, 'Cel'],
        ['2026-01-01T00:00:00.000Z', 'label', 'north', 'txt'],
        ['2026-01-01T00:00:10.000Z', 'temp', 23.4, 'Cel'],
        ['2026-01-01T00:00:10.000Z', 'open', false, 'Cel'],
      ],
    );
  });

  t.test('plain number on .../telemetry/{point}', async (t) => {
    await publish(client, TOPIC('plain') + '/pressure', '1013.25');
    await publish(client, TOPIC('plain') + '/alarm', 'true');
    const rows = await readings('plain');
    t.same(rows.map((r) => [r.point, r.value]).sort(), [
      ['alarm', true],
      ['pressure', 1013.25],
    ]);
  });

  t.test('QoS0 readings are stored too', async (t) => {
    await publish(client, TOPIC('q0'), JSON.stringify({ x: 1 }), 0);
    const rows = await waitFor(async () => {
      const r = await readings('q0');
      return r.length > 0 ? r : undefined;
    }, 'QoS0 reading');
    t.equal(rows[0]?.value, 1);
  });

  t.test('malformed payloads are counted by reason, dropped, and the client stays connected', async (t) => {
    const bad: [string, string][] = [
      [TOPIC('bad'), '{not json'],
      [TOPIC('bad'), '"a string"'],
      [TOPIC('bad'), JSON.stringify({ temp: null })],
      [TOPIC('bad'), JSON.stringify({ temp: 1, ts: 'yesterday' })],
      [TOPIC('bad'), JSON.stringify([{ n: 'temp' }])],
      [TOPIC('bad') + '/temp', 'warm'],
      [TOPIC('bad'), ''],
      [TOPIC('bad') + '/a/b', '1'],
    ];
    for (const [topic, payload] of bad) await publish(client, topic, payload);
    // A good message after the bad ones still lands: nothing else was lost.
    await publish(client, TOPIC('bad'), JSON.stringify({ temp: 19 }));
    t.equal(client.connected, true, 'client still connected');
    const rows = await readings('bad');
    t.same(
      rows.map((r) => [r.point, r.value]),
      [['temp', 19]],
      'only the good reading was stored',
    );
    const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
    const rejects = (reason: string) => metricValue(metrics, 'outpost_rejects_total', { driver: 'mqtt', reason });
    t.equal(rejects('invalid_json'), 1);
    t.equal(rejects('bad_shape'), 1);
    t.equal(rejects('bad_value'), 1);
    t.equal(rejects('bad_timestamp'), 1);
    t.equal(rejects('bad_senml'), 1);
    t.equal(rejects('not_a_number'), 1);
    t.equal(rejects('empty'), 1);
    t.equal(rejects('bad_topic'), 1);
  });

  t.test('oversized payloads are rejected by reason', async (t) => {
    const g2 = await startGateway({ drivers: { mqtt: { maxPayloadBytes: 64 } } });
    t.teardown(async () => {
      await g2.stop();
      removeDir(g2.dir);
    });
    const c2 = await connect(g2.mqttPort);
    t.teardown(() => endClient(c2));
    await publish(c2, TOPIC('big'), JSON.stringify({ a: 'x'.repeat(100) }));
    const metrics = (await api<string>(g2.httpUrl, '/metrics')).body;
    t.equal(metricValue(metrics, 'outpost_rejects_total', { reason: 'payload_too_large' }), 1);
    t.equal(c2.connected, true);
  });

  t.test('a QoS0 flood into a tiny store queue is slowed down, not dropped', async (t) => {
    const g3 = await startGateway({ store: { maxQueueRows: 20 }, drivers: { mqtt: { maxReadingsPerMessage: 20 } } });
    t.teardown(async () => {
      await g3.stop();
      removeDir(g3.dir);
    });
    const c3 = await connect(g3.mqttPort);
    t.teardown(() => endClient(c3));
    for (let i = 0; i < 400; i++) c3.publish(TOPIC('flood'), JSON.stringify({ n: i }), { qos: 0 });
    const count = async () =>
      (
        await api<{ rows: number[][] }>(g3.httpUrl, '/api/v1/query', g3.adminToken, {
          method: 'POST',
          body: { sql: "SELECT count(*)::INT FROM readings WHERE device = 'flood'" },
        })
      ).body.rows[0][0];
    await waitFor(async () => ((await count()) === 400 ? true : undefined), 'all 400 QoS0 readings', 15_000);
    const metrics = (await api<string>(g3.httpUrl, '/metrics')).body;
    t.equal(metricValue(metrics, 'outpost_rejects_total', { reason: 'queue_full' }), 0, 'nothing dropped');
    t.equal(await count(), 400);
  });

  t.test('metrics count received and committed readings', async (t) => {
    const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
    const received = metricValue(metrics, 'outpost_readings_received_total', { driver: 'mqtt' });
    const committed = metricValue(metrics, 'outpost_readings_committed_total');
    t.ok(received >= 16, `received ${received}`);
    t.equal(committed, received, 'everything received was committed');
    t.ok(metricValue(metrics, 'outpost_commit_latency_seconds_count') > 0, 'commit latency observed');
    t.ok(metricValue(metrics, 'process_resident_memory_bytes') > 0, 'RSS exported');
  });
});

t.test('a QoS2 retransmission (DUP) is stored once', async (t) => {
  const { generate, parser } = await import('mqtt-packet');
  const { connect: tcpConnect } = await import('node:net');
  const g = await startGateway();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const sock = tcpConnect(g.mqttPort, '127.0.0.1');
  t.teardown(() => void sock.destroy());
  const got: string[] = [];
  const p = parser({ protocolVersion: 4 });
  p.on('packet', (pkt) => got.push(pkt.cmd));
  sock.on('data', (d) => p.parse(d));
  const until = (cmd: string, n = 1) => waitFor(() => (got.filter((c) => c === cmd).length >= n ? true : undefined), cmd);
  sock.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'qos2-dup', keepalive: 30 }));
  await until('connack');
  const publish = (dup: boolean) =>
    generate({ cmd: 'publish', topic: TOPIC('qos2'), payload: Buffer.from('{"v": 1}'), qos: 2, messageId: 7, dup, retain: false });
  sock.write(publish(false));
  await until('pubrec');
  sock.write(publish(true)); // the client did not see PUBREC in time and resends
  await until('pubrec', 2);
  sock.write(generate({ cmd: 'pubrel', messageId: 7 }));
  await until('pubcomp');
  const rows = (await api<{ readings: ReadingRow[] }>(g.httpUrl, '/api/v1/readings?device=qos2', g.adminToken)).body.readings;
  t.same(
    rows.map((r) => r.value),
    [1],
    'one reading, not two',
  );
});
