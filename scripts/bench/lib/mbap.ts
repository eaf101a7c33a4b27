// The core of a minimal Modbus TCP (MBAP) responder on 127.0.0.1: splits each chunk read
// from a socket into frames (keeping a partial frame for the next chunk), answers every
// frame and sends all the answers of one chunk with one write.
import { createServer, type AddressInfo, type Socket } from 'node:net';

const LOOPBACK = '127.0.0.1';
/** MBAP length field: unit id + PDU; a PDU is at most 253 bytes. */
const MAX_MBAP_LENGTH = 254;

/**
 * Answers the frame at `off` of `buf` (MBAP length `len` = unit + PDU bytes) with a whole
 * response frame. `t` is the chunk's arrival stamp from the server's clock (0 without one).
 */
export type FrameAnswer = (buf: Buffer, off: number, len: number, t: number) => Buffer;

export interface MbapServer {
  readonly port: number;
  /** Destroys the open connections and closes the server. */
  close(): Promise<void>;
}

function serve(sock: Socket, answer: FrameAnswer, clock: (() => number) | undefined): void {
  let pending: Buffer | null = null;
  sock.on('error', () => undefined);
  sock.on('data', (chunk: Buffer) => {
    const t = clock ? clock() : 0;
    const buf: Buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    const replies: Buffer[] = [];
    let off = 0;
    while (buf.length - off >= 7) {
      const len = buf.readUInt16BE(off + 4);
      if (len < 2 || len > MAX_MBAP_LENGTH) {
        sock.destroy(); // not Modbus TCP: nothing sensible to resynchronise on
        return;
      }
      if (buf.length - off < 6 + len) break;
      replies.push(answer(buf, off, len, t));
      off += 6 + len;
    }
    if (off < buf.length) pending = Buffer.from(buf.subarray(off)); // a copy: `chunk` is not ours to keep
    if (replies.length === 1) sock.write(replies[0]!);
    else if (replies.length > 1) sock.write(Buffer.concat(replies));
  });
}

/** Listens on 127.0.0.1:`port` (0: any free port) and answers every frame with `answer`; `clock` stamps each chunk. */
export async function startMbapServer(port: number, answer: FrameAnswer, clock?: () => number): Promise<MbapServer> {
  const socks = new Set<Socket>();
  const server = createServer({ noDelay: true }, (sock) => {
    socks.add(sock);
    sock.once('close', () => socks.delete(sock));
    serve(sock, answer, clock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        server.close(() => resolve());
      }),
  };
}
