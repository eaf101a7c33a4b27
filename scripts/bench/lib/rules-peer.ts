// Modbus TCP actuator for the rules bench, run as a CHILD process (its own event loop,
// so a write is stamped the moment it reaches a socket, whatever the gateway is doing):
//
//   node dist/scripts/bench/lib/rules-peer.js
//
// Listens on 127.0.0.1, port 0, and prints `ready <port>`. Serves 65 536 coils and 65 536
// holding registers (FC1/2 read bits, FC3/4 read registers, FC5/6 write one, FC15/16
// write many; exceptions otherwise), every frame of a chunk answered with one write.
// Each write is reported on stdout as
//
//   write <fc> <address> <value> <t>
//
// where <t> is this process's wall clock in ms (performance.timeOrigin + performance.now())
// when the chunk carrying the request was read, <value> the first coil (0/1) or register.
// It is also the probe publisher, so probes go out from an event loop that is otherwise
// idle (a publisher in the gateway's process could never publish during a gateway stall,
// and would miss exactly the slow cases) and publish and arrival share one clock:
//
//   stdin `probe <mqttPort> <everyMs>`  connect to the broker, then every everyMs publish
//                                       {"t<k>": seq + 1, "ts": now} to probe/telemetry
//                                       (k = seq mod 10) and print `probe <seq> <t>`
//   stdin `unprobe`                     stop, disconnect, print `unprobed <count>`
//
// stdin: `ping` → `pong <t>` (the bench estimates the clock offset between the two
// processes from these), `stats` → `stats {"requests":…,"writes":…}`. Exits on
// SIGTERM/SIGINT or when stdin closes (the parent died), so it never outlives the bench.
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import { startMbapServer, type MbapServer } from './mbap.js';
import { probePoint, probeTopic } from './rules-setup.js';

const LOOPBACK = '127.0.0.1';
const EXIT_GRACE_MS = 2_000;

const coils = new Uint8Array(65_536);
const registers = new Uint16Array(65_536);
const totals = { requests: 0, writes: 0 };
const now = () => performance.timeOrigin + performance.now();

function frame(tx: number, unit: number, pdu: Buffer): Buffer {
  const out = Buffer.allocUnsafe(7 + pdu.length);
  out.writeUInt16BE(tx, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(1 + pdu.length, 4);
  out[6] = unit;
  pdu.copy(out, 7);
  return out;
}

const exception = (fc: number, code: number) => Buffer.from([(fc | 0x80) & 0xff, code]);

function reportWrite(fc: number, address: number, value: number, t: number): void {
  totals.writes++;
  process.stdout.write(`write ${fc} ${address} ${value} ${t.toFixed(3)}\n`);
}

/** The response PDU for one request PDU. */
function respond(pdu: Buffer, t: number): Buffer {
  const fc = pdu[0]!;
  if (pdu.length < 5) return exception(fc, 3);
  const address = pdu.readUInt16BE(1);
  const word = pdu.readUInt16BE(3);
  switch (fc) {
    case 1:
    case 2: {
      if (word < 1 || word > 2000 || address + word > 0x10000) return exception(fc, 3);
      const bytes = Math.ceil(word / 8);
      const out = Buffer.alloc(2 + bytes);
      out[0] = fc;
      out[1] = bytes;
      for (let i = 0; i < word; i++) if (coils[address + i]) out[2 + (i >> 3)]! |= 1 << (i & 7);
      return out;
    }
    case 3:
    case 4: {
      if (word < 1 || word > 125 || address + word > 0x10000) return exception(fc, 3);
      const out = Buffer.allocUnsafe(2 + 2 * word);
      out[0] = fc;
      out[1] = 2 * word;
      for (let i = 0; i < word; i++) out.writeUInt16BE(registers[address + i]!, 2 + 2 * i);
      return out;
    }
    case 5: {
      if (word !== 0xff00 && word !== 0) return exception(fc, 3);
      coils[address] = word === 0xff00 ? 1 : 0;
      reportWrite(fc, address, coils[address]!, t);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 6: {
      registers[address] = word;
      reportWrite(fc, address, word, t);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 15: {
      if (pdu.length < 6 + Math.ceil(word / 8) || word < 1 || address + word > 0x10000) return exception(fc, 3);
      for (let i = 0; i < word; i++) coils[address + i] = (pdu[6 + (i >> 3)]! >> (i & 7)) & 1;
      reportWrite(fc, address, coils[address]!, t);
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 16: {
      if (pdu.length < 6 + 2 * word || word < 1 || address + word > 0x10000) return exception(fc, 3);
      for (let i = 0; i < word; i++) registers[address + i] = pdu.readUInt16BE(6 + 2 * i);
      reportWrite(fc, address, registers[address]!, t);
      return Buffer.from(pdu.subarray(0, 5));
    }
    default:
      return exception(fc, 1);
  }
}

/** Answers the frame at `off` (MBAP length `len`) of a chunk read at `t`. */
function answer(buf: Buffer, off: number, len: number, t: number): Buffer {
  totals.requests++;
  const tx = buf.readUInt16BE(off);
  const unit = buf[off + 6]!;
  return frame(tx, unit, respond(buf.subarray(off + 7, off + 6 + len), t));
}

// ---- probe publisher --------------------------------------------------------------

interface Prober {
  client: MqttClient;
  timer: NodeJS.Timeout | null;
  seq: number;
}

let prober: Prober | null = null;

function startProbes(port: number, everyMs: number): void {
  if (prober || !Number.isInteger(port) || !(everyMs >= 1)) {
    process.stdout.write('error bad probe command\n');
    return;
  }
  const client = mqtt.connect({ host: LOOPBACK, port, clientId: `bench-rules-probe-${process.pid}`, clean: true, reconnectPeriod: 0, connectTimeout: 5_000 });
  const p: Prober = { client, timer: null, seq: 0 };
  prober = p;
  client.on('error', (err) => process.stdout.write(`error probe client: ${err.message}\n`));
  client.once('connect', () => {
    process.stdout.write('probing\n');
    p.timer = setInterval(() => {
      if (!client.connected) return;
      const seq = p.seq++;
      const payload = JSON.stringify({ [probePoint(seq)]: seq + 1, ts: Date.now() });
      const t = now();
      client.publish(probeTopic(), payload, { qos: 0 });
      process.stdout.write(`probe ${seq} ${t.toFixed(3)}\n`);
    }, everyMs);
  });
}

function stopProbes(): void {
  const p = prober;
  prober = null;
  if (!p) {
    process.stdout.write('unprobed 0\n');
    return;
  }
  if (p.timer) clearInterval(p.timer);
  p.client.end(false, {}, () => process.stdout.write(`unprobed ${p.seq}\n`));
}

async function run(): Promise<void> {
  let server: MbapServer | null = null;
  let stopping = false;
  const shutdown = (code: number) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    if (prober?.timer) clearInterval(prober.timer);
    prober?.client.end(true);
    void (server?.close() ?? Promise.resolve()).then(() => process.exit(code));
  };
  process.once('SIGTERM', () => shutdown(0));
  process.once('SIGINT', () => shutdown(0));
  // stdin closes when the parent goes away, however it went.
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const cmd = line.trim();
    if (cmd === 'ping') process.stdout.write(`pong ${now().toFixed(3)}\n`);
    else if (cmd === 'stats') process.stdout.write(`stats ${JSON.stringify(totals)}\n`);
    else if (cmd.startsWith('probe ')) {
      const [port, everyMs] = cmd.slice('probe '.length).split(' ').map(Number);
      startProbes(port!, everyMs!);
    } else if (cmd === 'unprobe') stopProbes();
  });
  input.once('close', () => shutdown(0));
  try {
    server = await startMbapServer(0, answer, now);
  } catch (err) {
    process.stdout.write(`error ${(err as Error).message}\n`);
    shutdown(1);
    return;
  }
  process.stdout.write(`ready ${server.port}\n`);
}

await run();
