// The Modbus driver end to end: the real gateway polls modbus-serial's TCP server on
// 127.0.0.1, and values, coalescing, exceptions, dead devices and writes are checked in
// DuckDB, in the server's request counts and in the server's memory.
import t from 'tap';
import type { ReadingRow } from '../gateway/store/queries.js';
import { api, removeDir, startGateway, waitFor, type TestGateway } from './helpers/gateway.js';
import { setRegisters, startModbusPeer, type ModbusPeer } from './helpers/modbus.js';

const be = {
  f32: (v: number) => {
    const b = Buffer.alloc(4);
    b.writeFloatBE(v);
    return b;
  },
  f64: (v: number) => {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return b;
  },
  i32: (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return b;
  },
  u64: (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return b;
  },
};
/** Reorders big-endian bytes by a byte-index table (which input byte goes to each place). */
const permute = (b: Buffer, idx: number[]) => Buffer.from(idx.map((i) => b[i]));
const WORD_SWAP32 = [2, 3, 0, 1]; // CDAB
const BYTE_SWAP32 = [1, 0, 3, 2]; // BADC
const REVERSE32 = [3, 2, 1, 0]; // DCBA
const BYTE_SWAP64 = [1, 0, 3, 2, 5, 4, 7, 6]; // BADC over 4 words
const REVERSE64 = [7, 6, 5, 4, 3, 2, 1, 0]; // DCBA

function line(peer: ModbusPeer, extra: Record<string, unknown> = {}) {
  return { id: 'bus', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0, ...extra };
}

async function readings(g: TestGateway, device: string): Promise<ReadingRow[]> {
  return (await api<{ readings: ReadingRow[] }>(g.httpUrl, `/api/v1/readings?device=${device}&limit=10000`, g.adminToken)).body.readings;
}

async function latest(g: TestGateway, device: string): Promise<Map<string, ReadingRow>> {
  const out = new Map<string, ReadingRow>();
  for (const r of await readings(g, device)) out.set(r.point, r);
  return out;
}

t.test('every type and word order arrives in DuckDB with the right value', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const h = peer.holding;
  setRegisters(h, 0, be.f32(123.456)); // ABCD
  setRegisters(h, 2, permute(be.f32(-9.75), WORD_SWAP32));
  setRegisters(h, 4, permute(be.f32(1.5e-3), BYTE_SWAP32));
  setRegisters(h, 6, permute(be.f32(65535.5), REVERSE32));
  setRegisters(h, 8, permute(be.i32(-123456789), WORD_SWAP32));
  setRegisters(h, 10, permute(be.u64(0x0102030405060708n), REVERSE64));
  setRegisters(h, 14, permute(be.f64(-1234.5678), BYTE_SWAP64));
  h[18] = 0xcfc7; // int16 -12345
  h[19] = 2305; // uint16, scaled ×0.1 −10 → 220.5
  setRegisters(h, 20, Buffer.from('OUTPOST-1\0\0\0', 'latin1'));
  h[26] = 0b1000_0000_0000_0001; // bits 0 and 15
  peer.input[5] = 777;
  peer.coils[3] = true;
  peer.discrete[7] = true;
  const points = [
    { name: 'f32_abcd', table: 'holding', address: 0, type: 'float32', order: 'ABCD' },
    { name: 'f32_cdab', table: 'holding', address: 2, type: 'float32', order: 'CDAB' },
    { name: 'f32_badc', table: 'holding', address: 4, type: 'float32', order: 'BADC' },
    { name: 'f32_dcba', table: 'holding', address: 6, type: 'float32', order: 'DCBA' },
    { name: 'i32_cdab', table: 'holding', address: 8, type: 'int32', order: 'CDAB' },
    { name: 'u64_dcba', table: 'holding', address: 10, type: 'uint64', order: 'DCBA' },
    { name: 'f64_badc', table: 'holding', address: 14, type: 'float64', order: 'BADC' },
    { name: 'i16', table: 'holding', address: 18, type: 'int16' },
    { name: 'volts', table: 'holding', address: 19, type: 'uint16', scale: 0.1, offset: -10, unit: 'V' },
    { name: 'serial', table: 'holding', address: 20, type: 'string', length: 6 },
    { name: 'bit0', table: 'holding', address: 26, type: 'bit', bit: 0 },
    { name: 'bit15', table: 'holding', address: 26, type: 'bit', bit: 15 },
    { name: 'bit1', table: 'holding', address: 26, type: 'bit', bit: 1 },
    { name: 'in5', table: 'input', address: 5, type: 'uint16' },
    { name: 'coil3', table: 'coil', address: 3, type: 'bool' },
    { name: 'di7', table: 'discrete', address: 7, type: 'bool' },
  ];
  const g = await startGateway({
    drivers: { modbus: { enabled: true, lines: [line(peer)] } },
    devices: [{ id: 'meter', zone: 'plant', modbus: { line: 'bus', unit: 1, pollMs: 60000, points } }],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const got = await waitFor(
    async () => {
      const m = await latest(g, 'meter');
      return m.size === points.length ? m : undefined;
    },
    'all points',
    5000,
  );
  const value = (n: string) => got.get(n)?.value;
  t.ok(Math.abs((value('f32_abcd') as number) - 123.456) < 1e-4);
  t.equal(value('f32_cdab'), -9.75);
  t.ok(Math.abs((value('f32_badc') as number) - 1.5e-3) < 1e-9);
  t.equal(value('f32_dcba'), 65535.5);
  t.equal(value('i32_cdab'), -123456789);
  t.equal(value('u64_dcba'), Number(0x0102030405060708n));
  t.equal(value('f64_badc'), -1234.5678);
  t.equal(value('i16'), -12345);
  t.ok(Math.abs((value('volts') as number) - 220.5) < 1e-9);
  t.equal(got.get('volts')?.unit, 'V');
  t.equal(value('serial'), 'OUTPOST-1');
  t.equal(value('bit0'), true);
  t.equal(value('bit15'), true);
  t.equal(value('bit1'), false);
  t.equal(value('in5'), 777);
  t.equal(value('coil3'), true);
  t.equal(value('di7'), true);
  t.equal(got.get('i16')?.quality, 'good');
  // Coalescing: 27 holding registers in one request, one input request.
  t.same(peer.reads, { holding: 1, input: 1 }, 'one request per table for the whole map');
});

t.test('coalescing versus max gap and max registers, counted at the server', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const spread = [0, 5, 20, 21, 100].map((address) => ({ name: `r${address}`, table: 'holding', address, type: 'uint16' }));
  const g = await startGateway({
    drivers: { modbus: { enabled: true, lines: [line(peer)] } },
    devices: [
      { id: 'wide', zone: 'z', modbus: { line: 'bus', pollMs: 60000, maxGap: 20, points: spread } },
      { id: 'tight', zone: 'z', modbus: { line: 'bus', pollMs: 60000, maxGap: 0, points: spread.map((p) => ({ ...p })) } },
      {
        id: 'small',
        zone: 'z',
        modbus: { line: 'bus', pollMs: 60000, maxGap: 100, maxRegistersPerRequest: 8, points: spread.map((p) => ({ ...p })) },
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  await waitFor(
    async () =>
      (await readings(g, 'small')).length === 5 && (await readings(g, 'tight')).length === 5 && (await readings(g, 'wide')).length === 5
        ? true
        : undefined,
    'three devices polled',
  );
  // wide: [0-21] + [100] = 2; tight: [0] [5] [20-21] [100] = 4; small (max 8 regs): [0-5] [20-21] [100] = 3
  t.equal(peer.reads.holding, 2 + 4 + 3);
});

t.test('exceptions become quality=bad readings and one event; a dead unit does not slow the others', async (t) => {
  const peer = await startModbusPeer({ unitID: 1 }); // unit 2 gets no answer at all
  t.teardown(() => peer.close());
  peer.illegal.add(50);
  peer.holding[0] = 42;
  const g = await startGateway({
    drivers: { modbus: { enabled: true, lines: [line(peer, { timeoutMs: 150, retries: 1 })] } },
    devices: [
      {
        id: 'alive',
        zone: 'z',
        modbus: {
          line: 'bus',
          pollMs: 50,
          points: [
            { name: 'ok', table: 'holding', address: 0, type: 'uint16' },
            { name: 'broken', table: 'holding', address: 50, type: 'uint16', report: 'change' },
          ],
        },
      },
      {
        id: 'dead',
        zone: 'z',
        modbus: {
          line: 'bus',
          unit: 2,
          pollMs: 50,
          offlineAfterFailures: 2,
          offlinePollMs: 5000,
          points: [{ name: 'x', table: 'holding', address: 0 }],
        },
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const events = async (type: string) =>
    (await api<{ events: { subject: string; data: Record<string, unknown> }[] }>(g.httpUrl, `/api/v1/events?type=${type}`, g.adminToken))
      .body.events;
  const offline = await waitFor(
    async () => (await events('device.offline')).find((e) => e.subject === 'dead'),
    'dead device offline',
    5000,
  );
  t.match(String(offline.data.reason), /^timeout/);
  // Once 'dead' is offline it is probed every 5 s, so 'alive' (every 50 ms) gets the line.
  const before = (await readings(g, 'alive')).filter((r) => r.point === 'ok').length;
  await new Promise((r) => setTimeout(r, 1000));
  const after = (await readings(g, 'alive')).filter((r) => r.point === 'ok').length;
  t.ok(after - before >= 10, `alive polled ${after - before} times in 1 s while dead is offline`);
  const broken = (await readings(g, 'alive')).filter((r) => r.point === 'broken');
  t.equal(broken.length, 1, 'report: change keeps an unchanged bad reading to one row');
  t.equal(broken[0]?.quality, 'bad');
  t.equal(broken[0]?.value, null, 'no value for a bad reading');
  const sql = await api<{ rows: unknown[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, {
    method: 'POST',
    body: { sql: "SELECT count(*)::INT, count(value)::INT FROM readings WHERE point = 'broken'" },
  });
  t.same(sql.body.rows, [[1, 0]], 'stored as NULL, so avg/max skip it');
  const exc = await events('modbus.exception');
  t.equal(exc.length, 1, 'one event, not one per poll');
  t.match(exc[0]?.data, { device: 'alive', code: 2, name: /ILLEGAL DATA ADDRESS/ });
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_modbus_requests_total\{line="bus",result="timeout"\} [1-9]/);
  t.match(metrics, /outpost_modbus_requests_total\{line="bus",result="exception"\} [1-9]/);
  const health = (
    await api<{ drivers: { modbus: { devices: Record<string, { online: boolean }> } } }>(g.httpUrl, '/api/v1/status', g.adminToken)
  ).body;
  t.equal(health.drivers.modbus.devices.dead?.online, false);
  t.equal(health.drivers.modbus.devices.alive?.online, true);
  const list = (await api<{ devices: { id: string; online: boolean; via: string }[] }>(g.httpUrl, '/api/v1/devices', g.adminToken)).body
    .devices;
  t.same(
    list.filter((d) => d.via === 'modbus').map((d) => [d.id, d.online]),
    [
      ['alive', true],
      ['dead', false],
    ],
    'the device list shows which Modbus devices answer',
  );
});

t.test('writes toggle a coil and set a float register, ahead of polls, with read-back', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const g = await startGateway({
    drivers: { modbus: { enabled: true, lines: [line(peer)] } },
    devices: [
      {
        id: 'relays',
        zone: 'door',
        modbus: {
          line: 'bus',
          pollMs: 60000,
          verifyWrites: true,
          points: [
            { name: 'lock', table: 'coil', address: 2, type: 'bool', writable: true },
            { name: 'setpoint', table: 'holding', address: 10, type: 'float32', order: 'CDAB', writable: true },
            { name: 'status', table: 'input', address: 0, type: 'uint16' },
          ],
        },
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const command = (args: Record<string, unknown>) =>
    api<{ ok: boolean; detail: string }>(g.httpUrl, '/api/v1/devices/relays/commands', g.adminToken, {
      method: 'POST',
      body: { action: 'write', args },
    });
  let res = await command({ point: 'lock', value: true });
  t.equal(res.status, 202, res.body.detail);
  t.match(res.body.detail, /verified/);
  t.equal(peer.coils[2], true, 'the coil is on at the server');
  await command({ point: 'lock', value: 'off' });
  t.equal(peer.coils[2], false, 'and off again');
  res = await command({ point: 'setpoint', value: 21.5 });
  t.equal(res.status, 202, res.body.detail);
  t.same(peer.holding.slice(10, 12), [0x0000, 0x41ac], '21.5 = 0x41AC0000, low word first (CDAB)');
  res = await command({ point: 'status', value: 1 });
  t.equal(res.status, 409);
  t.match(res.body.detail, /not writable/);
  res = await command({ point: 'setpoint', value: 'warm' });
  t.equal(res.status, 409);
  t.match(res.body.detail, /cannot encode/);
});

t.test('report modes: always, on change, and by deadband', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  peer.holding.splice(0, 3, 100, 100, 100);
  const g = await startGateway({
    drivers: { modbus: { enabled: true, lines: [line(peer)] } },
    devices: [
      {
        id: 'modes',
        zone: 'z',
        modbus: {
          line: 'bus',
          pollMs: 40,
          points: [
            { name: 'all', table: 'holding', address: 0 },
            { name: 'chg', table: 'holding', address: 1, report: 'change' },
            { name: 'db', table: 'holding', address: 2, report: 'deadband', deadband: 5 },
          ],
        },
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const values = async (point: string) => (await readings(g, 'modes')).filter((r) => r.point === point).map((r) => r.value);
  const polls = () => peer.reads.holding;
  const waitPolls = async (n: number) => {
    const target = polls() + n;
    await waitFor(() => (polls() >= target ? true : undefined), `${n} polls`);
  };
  await waitPolls(3);
  peer.holding.splice(0, 3, 101, 101, 103); // db moves 3 < 5: not reported
  await waitPolls(3);
  peer.holding.splice(0, 3, 101, 101, 106); // db moves 6 from the last reported 100
  await waitPolls(3);
  await g.gw.writer.flush();
  t.ok((await values('all')).length >= 8, 'always: every poll');
  t.same(await values('chg'), [100, 101], 'change: only new values');
  t.same(await values('db'), [100, 106], 'deadband: only moves of at least 5 from the last reported value');
});
