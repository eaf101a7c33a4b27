// Modbus RTU over a real serial line: socat makes a pseudo-terminal pair, modbus-serial's
// ServerSerial answers on one end and the gateway polls and writes on the other. Then a
// faulty "serial server" (RTU over TCP) sends corrupted and cut-off frames, which must be
// counted by reason while the device is marked offline, never crashing anything.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import ModbusRTU from 'modbus-serial';
import type { ReadingRow } from '../gateway/store/queries.js';
import { api, removeDir, startGateway, tempDir, waitFor } from './helpers/gateway.js';

// Closing a serial port on a pty can leave one read request pending in libuv's thread
// pool (seen intermittently on loaded machines), which would keep this test process
// alive until tap's timeout although every test passed. Once the tests are done, give
// normal exit a second and then end the process with the exit code tap has set.
t.teardown(() => {
  setTimeout(() => process.exit(), 1000).unref();
});

async function ptyPair(dir: string): Promise<{ a: string; b: string; proc: ChildProcess }> {
  const a = join(dir, 'ttyA');
  const b = join(dir, 'ttyB');
  const proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  await waitFor(() => (existsSync(a) && existsSync(b) ? true : undefined), 'socat pty pair', 5000);
  return { a, b, proc };
}

t.test('RTU polling and writes through a pseudo-terminal pair', async (t) => {
  const dir = tempDir('outpost-rtu-');
  const { a, b, proc } = await ptyPair(dir);
  // One teardown, in dependency order: the gateway, then the serial server, then the
  // pty pair (killing socat first leaves the serial ports erroring).
  const cleanup: (() => Promise<void> | void)[] = [];
  t.teardown(async () => {
    for (const step of cleanup.reverse()) await step();
    proc.kill();
    removeDir(dir);
  });
  const holding = [0x1234, 0x4049, 0x0fdb, 0, 0];
  const coils = [false, false];
  const vector = {
    getHoldingRegister: (addr: number) => holding[addr] ?? 0,
    getMultipleHoldingRegisters: (addr: number, len: number) => holding.slice(addr, addr + len),
    getCoil: (addr: number) => coils[addr] ?? false,
    setCoil: (addr: number, v: boolean) => void (coils[addr] = v),
    setRegister: (addr: number, v: number) => void (holding[addr] = v),
  };
  const server = new ModbusRTU.ServerSerial(vector, { path: b, baudRate: 19200, unitID: 7 });
  await new Promise<void>((resolve, reject) => {
    server.on('initialized', () => resolve());
    server.on('error', (err) => reject(err ?? new Error('serial server error')));
  });
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));

  const g = await startGateway({
    drivers: {
      modbus: { enabled: true, lines: [{ id: 'rs485', transport: 'rtu', path: a, baudRate: 19200, parity: 'none', timeoutMs: 500 }] },
    },
    devices: [
      {
        id: 'plc',
        zone: 'z',
        modbus: {
          line: 'rs485',
          unit: 7,
          pollMs: 200,
          points: [
            { name: 'word', table: 'holding', address: 0, type: 'uint16' },
            { name: 'pi', table: 'holding', address: 1, type: 'float32' },
            { name: 'relay', table: 'coil', address: 1, type: 'bool', writable: true },
          ],
        },
      },
    ],
  });
  cleanup.push(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const latest = async () => {
    const rows = (await api<{ readings: ReadingRow[] }>(g.httpUrl, '/api/v1/readings?device=plc&limit=10000', g.adminToken)).body.readings;
    return new Map(rows.map((r) => [r.point, r.value]));
  };
  const first = await waitFor(
    async () => {
      const m = await latest();
      return m.size === 3 ? m : undefined;
    },
    'RTU readings',
    5000,
  );
  t.equal(first.get('word'), 0x1234);
  t.ok(Math.abs((first.get('pi') as number) - Math.PI) < 1e-6, 'float32 over RTU');
  t.equal(first.get('relay'), false);

  const res = await api<{ ok: boolean; detail: string }>(g.httpUrl, '/api/v1/devices/plc/commands', g.adminToken, {
    method: 'POST',
    body: { action: 'write', args: { point: 'relay', value: true } },
  });
  t.equal(res.status, 202, res.body.detail);
  t.equal(coils[1], true, 'the coil was set over RTU');
  await waitFor(async () => ((await latest()).get('relay') === true ? true : undefined), 'relay read back as on');
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_modbus_requests_total\{line="rs485",result="ok"\} [1-9]/);
  t.notMatch(metrics, /outpost_modbus_frame_errors_total\{line="rs485"/, 'no frame errors on a clean line');
});

t.test('corrupted and short RTU frames are counted by reason', async (t) => {
  // Answers every request to unit 1 with a well-formed read reply whose CRC is wrong,
  // and requests to unit 2 with the first 3 bytes of one.
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('data', (req) => {
      const reply = Buffer.from([req[0], 0x03, 0x02, 0x00, 0x2a, 0xde, 0xad]);
      sock.write(req[0] === 1 ? reply : reply.subarray(0, 3));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy(); // close() alone waits for the gateway's connection
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  const point = [{ name: 'x', table: 'holding', address: 0, type: 'uint16' }];
  const g = await startGateway({
    drivers: {
      modbus: {
        enabled: true,
        lines: [{ id: 'gw', transport: 'rtu-over-tcp', host: '127.0.0.1', port, baudRate: 115200, timeoutMs: 100, retries: 0 }],
      },
    },
    devices: [
      { id: 'crc', zone: 'z', modbus: { line: 'gw', unit: 1, pollMs: 50, offlineAfterFailures: 2, points: point } },
      { id: 'cut', zone: 'z', modbus: { line: 'gw', unit: 2, pollMs: 50, offlineAfterFailures: 2, points: point } },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const metrics = await waitFor(
    async () => {
      const m = (await api<string>(g.httpUrl, '/metrics')).body;
      return /reason="bad_crc"\} [1-9]/.test(m) && /reason="short_frame"\} [1-9]/.test(m) ? m : undefined;
    },
    'both kinds of frame errors counted',
    5000,
  );
  t.match(metrics, /outpost_modbus_frame_errors_total\{line="gw",reason="bad_crc"\} [1-9]/);
  t.match(metrics, /outpost_modbus_frame_errors_total\{line="gw",reason="short_frame"\} [1-9]/);
  const rows = (await api<{ readings: ReadingRow[] }>(g.httpUrl, '/api/v1/readings?limit=10', g.adminToken)).body.readings;
  t.same(rows, [], 'no reading made from a garbled frame');
  const offline = async () => {
    const s = (
      await api<{ drivers: { modbus: { devices: Record<string, { online: boolean }> } } }>(g.httpUrl, '/api/v1/status', g.adminToken)
    ).body;
    return !s.drivers.modbus.devices.crc?.online && !s.drivers.modbus.devices.cut?.online ? true : undefined;
  };
  t.ok(await waitFor(offline, 'both devices offline', 5000), 'both devices are marked offline');
});
