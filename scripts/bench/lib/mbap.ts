// A minimal Modbus TCP device on 127.0.0.1 for lib/peer.ts. The server splits each chunk read
// from a socket into MBAP frames (a partial frame waits for the next chunk) and answers all the
// frames of a chunk with one write. The device answers FC1/2 (coils), FC3/4 (registers whose
// values change: register a = (n + a) & 0xffff, n counting its register reads) and FC5 (write
// one coil); exceptions otherwise.
import { createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * Answers a request PDU with a whole response frame whose 7-byte MBAP header the server fills in
 * (one buffer per answer); `t` is the chunk's arrival stamp (0 without a clock).
 */
export type Respond = (pdu: Buffer, t: number) => Buffer;
export type Device = { respond: Respond; totals: { requests: number; registers: number } };
export type MbapServer = { port: number; close(): Promise<void> };

const exception = (fc: number, code: number) => Buffer.from([0, 0, 0, 0, 0, 0, 0, (fc | 0x80) & 0xff, code]);

/** One device; `onWrite` hears each coil write with its arrival stamp. */
export function device(onWrite?: (fc: number, address: number, value: number, t: number) => void): Device {
  const coils = new Uint8Array(65_536);
  const totals = { requests: 0, registers: 0 };
  let n = 0;
  const respond: Respond = (pdu, t) => {
    totals.requests++;
    const fc = pdu[0];
    if (pdu.length !== 5) return exception(fc, 3); // illegal data value
    const [address, word] = [pdu.readUInt16BE(1), pdu.readUInt16BE(3)];
    if (fc === 5) {
      if (word !== 0xff00 && word !== 0) return exception(fc, 3);
      coils[address] = word === 0xff00 ? 1 : 0;
      onWrite?.(fc, address, coils[address], t);
      return Buffer.concat([Buffer.alloc(7), pdu]); // FC5 echoes the request
    }
    const registers = fc === 3 || fc === 4;
    if (!registers && fc !== 1 && fc !== 2) return exception(fc, 1); // illegal function
    if (word < 1 || word > (registers ? 125 : 2000)) return exception(fc, 3);
    if (address + word > 0x10000) return exception(fc, 2); // illegal data address
    const out = Buffer.alloc(9 + (registers ? 2 * word : Math.ceil(word / 8)));
    [out[7], out[8]] = [fc, out.length - 9];
    if (!registers) for (let i = 0; i < word; i++) out[9 + (i >> 3)] |= coils[address + i] << (i & 7);
    else for (let i = 0, k = n++; i < word; i++) out.writeUInt16BE((k + address + i) & 0xffff, 9 + 2 * i);
    if (registers) totals.registers += word;
    return out;
  };
  return { respond, totals };
}

function serve(sock: Socket, respond: Respond, clock?: () => number): void {
  let pending: Buffer | null = null;
  sock.on('error', () => undefined);
  sock.on('data', (chunk: Buffer) => {
    const t = clock?.() ?? 0;
    const buf: Buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    const replies: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= 7) {
      const len = buf.readUInt16BE(off + 4); // unit + PDU, at most 254 bytes
      if (len < 2 || len > 254) return void sock.destroy(); // not Modbus TCP: nothing to resynchronise on
      if (buf.length - off < 6 + len) break;
      const reply = respond(buf.subarray(off + 7, off + 6 + len), t);
      reply.writeUInt16BE(buf.readUInt16BE(off), 0); // transaction id
      reply.writeUInt32BE(reply.length - 6, 2); // protocol 0, length
      reply[6] = buf[off + 6]; // unit id
      replies.push(reply);
      off += 6 + len;
    }
    if (off < buf.length) pending = Buffer.from(buf.subarray(off)); // a copy: `chunk` is not ours to keep
    if (replies.length) sock.write(replies.length === 1 ? replies[0] : Buffer.concat(replies));
  });
}

/** Listens on 127.0.0.1:`port` (0: any free port) and answers every frame with `respond`; `clock` stamps each chunk. */
export async function startMbapServer(port: number, respond: Respond, clock?: () => number): Promise<MbapServer> {
  const socks = new Set<Socket>();
  const server = createServer({ noDelay: true }, (sock) => {
    socks.add(sock.once('close', () => socks.delete(sock)));
    serve(sock, respond, clock);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const close = () => {
    socks.forEach((s) => s.destroy());
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port: (server.address() as AddressInfo).port, close };
}
