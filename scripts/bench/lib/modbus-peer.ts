// Modbus TCP peer for the modbus bench, run as a CHILD process so it has its own core:
//
//   node dist/scripts/bench/lib/modbus-peer.js <fast|modbus-serial> <port> [<port> ...]
//
// Listens on 127.0.0.1 on every given port (one server per simulated device) and serves
// holding and input registers whose values change: register a = (n + a) & 0xffff, where
// n counts the requests that server has answered. Prints `ready` on stdout once every
// server listens; answers a `stats` line on stdin with `stats {"requests":…,"registers":…}`;
// exits on SIGTERM/SIGINT or when stdin closes (the parent died), so it never outlives it.
//
//   modbus-serial  modbus-serial's ServerTCP (what the driver tests use). It parses every
//                  request on a setTimeout(0) and computes CRCs and debug strings per
//                  request, so it costs the peer far more CPU per request than the gateway.
//   fast           a minimal MBAP responder (FC3/FC4 reads only, exceptions otherwise):
//                  all frames of one chunk are answered with one write.
import { createInterface } from 'node:readline';
import { ServerTCP } from 'modbus-serial';
import { startMbapServer } from './mbap.js';

const LOOPBACK = '127.0.0.1';
const MAX_READ_REGISTERS = 125;
const EXIT_GRACE_MS = 2_000;

type PeerKind = 'fast' | 'modbus-serial';

interface Counters {
  requests: number;
  registers: number;
}

interface PeerServer {
  close(): Promise<void>;
}

const totals: Counters = { requests: 0, registers: 0 };

function registerValue(counter: number, address: number): number {
  return (counter + address) & 0xffff;
}

// ---- fast: a minimal MBAP responder (lib/mbap.ts) ----------------------------------------------

function exceptionFrame(tx: number, unit: number, fc: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b.writeUInt16BE(tx, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(3, 4);
  b[6] = unit;
  b[7] = (fc | 0x80) & 0xff;
  b[8] = code;
  return b;
}

/** Answers the frame at `off` (MBAP length `len` = unit + PDU bytes). */
function answer(buf: Buffer, off: number, len: number, state: { n: number }): Buffer {
  const tx = buf.readUInt16BE(off);
  const unit = buf[off + 6]!;
  const fc = buf[off + 7]!;
  if (fc !== 3 && fc !== 4) return exceptionFrame(tx, unit, fc, 1); // illegal function
  if (len !== 6) return exceptionFrame(tx, unit, fc, 3); // illegal data value
  const address = buf.readUInt16BE(off + 8);
  const count = buf.readUInt16BE(off + 10);
  if (count < 1 || count > MAX_READ_REGISTERS) return exceptionFrame(tx, unit, fc, 3);
  if (address + count > 0x10000) return exceptionFrame(tx, unit, fc, 2); // illegal data address
  const bytes = 2 * count;
  const out = Buffer.allocUnsafe(9 + bytes);
  out.writeUInt16BE(tx, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(3 + bytes, 4);
  out[6] = unit;
  out[7] = fc;
  out[8] = bytes;
  const n = state.n++;
  for (let i = 0; i < count; i++) out.writeUInt16BE(registerValue(n, address + i), 9 + 2 * i);
  totals.requests++;
  totals.registers += count;
  return out;
}

function startFast(port: number): Promise<PeerServer> {
  const state = { n: 0 };
  return startMbapServer(port, (buf, off, len) => answer(buf, off, len, state));
}

// ---- modbus-serial's ServerTCP --------------------------------------------------------

async function startModbusSerial(port: number): Promise<PeerServer> {
  const state = { n: 0 };
  const read = (address: number, length: number): number[] => {
    const n = state.n++;
    totals.requests++;
    totals.registers += length;
    const out = new Array<number>(length);
    for (let i = 0; i < length; i++) out[i] = registerValue(n, address + i);
    return out;
  };
  // ServerTCP answers a 1-register read through get*Register, longer ones through getMultiple*.
  const vector = {
    getHoldingRegister: (address: number) => read(address, 1)[0]!,
    getInputRegister: (address: number) => read(address, 1)[0]!,
    getMultipleHoldingRegisters: (address: number, length: number) => read(address, length),
    getMultipleInputRegisters: (address: number, length: number) => read(address, length),
  };
  const server = new ServerTCP(vector, { host: LOOPBACK, port, unitID: 255 });
  await new Promise<void>((resolve, reject) => {
    server.on('initialized', () => resolve());
    server.on('serverError', (err) => reject(err ?? new Error(`modbus-serial server on port ${port} failed`)));
  });
  server.on('socketError', () => undefined);
  server.on('error', () => undefined);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of server.socks.keys()) sock.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- process ----------------------------------------------------------------------

function parseArgv(argv: string[]): { kind: PeerKind; ports: number[] } {
  const [kind, ...rest] = argv;
  if (kind !== 'fast' && kind !== 'modbus-serial') throw new Error(`peer kind must be fast or modbus-serial, got "${kind ?? ''}"`);
  const ports = rest.map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new Error(`bad port list: ${rest.join(' ')}`);
  return { kind, ports };
}

async function run(): Promise<void> {
  const { kind, ports } = parseArgv(process.argv.slice(2));
  const servers: PeerServer[] = [];
  let stopping = false;
  const shutdown = (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    void Promise.allSettled(servers.map((s) => s.close())).then(() => process.exit(code));
  };
  process.once('SIGTERM', () => shutdown(0));
  process.once('SIGINT', () => shutdown(0));
  // stdin closes when the parent goes away, however it went.
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(`stats ${JSON.stringify(totals)}\n`);
  });
  input.once('close', () => shutdown(0));
  try {
    const start = kind === 'fast' ? startFast : startModbusSerial;
    for (const port of ports) servers.push(await start(port));
  } catch (err) {
    process.stdout.write(`error ${(err as Error).message}\n`);
    shutdown(1);
    return;
  }
  process.stdout.write('ready\n');
}

await run();
