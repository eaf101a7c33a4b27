// Modbus framing without sockets: request PDUs, response validation, the MBAP (TCP) header
// and RTU frames with their CRC. Responses are checked strictly because every malformed
// frame is counted by reason; `data` of a read is a view into the response, not a copy.
import type { Table } from './schema.js';

export type FrameErrorReason =
  'wrong_function' | 'bad_length' | 'bad_echo' | 'short_frame' | 'bad_crc' | 'wrong_unit' | 'wrong_transaction';

export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly reason: FrameErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export const FC = {
  readCoils: 1,
  readDiscreteInputs: 2,
  readHoldingRegisters: 3,
  readInputRegisters: 4,
  writeSingleCoil: 5,
  writeSingleRegister: 6,
  writeMultipleCoils: 15,
  writeMultipleRegisters: 16,
} as const;

const READ_FC: Record<Table, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };

const EXCEPTION_NAMES: Record<number, string> = {
  1: 'ILLEGAL FUNCTION',
  2: 'ILLEGAL DATA ADDRESS',
  3: 'ILLEGAL DATA VALUE',
  4: 'SERVER DEVICE FAILURE',
  5: 'ACKNOWLEDGE',
  6: 'SERVER DEVICE BUSY',
  8: 'MEMORY PARITY ERROR',
  10: 'GATEWAY PATH UNAVAILABLE',
  11: 'GATEWAY TARGET DEVICE FAILED TO RESPOND',
};
function exceptionName(code: number): string {
  return EXCEPTION_NAMES[code] ?? `EXCEPTION ${code}`;
}

function checkSpan(address: number, count: number, max: number): void {
  if (!Number.isInteger(address) || address < 0 || address > 65535) throw new RangeError(`address ${address} is not 0..65535`);
  if (!Number.isInteger(count) || count < 1 || count > max) throw new RangeError(`count ${count} is not 1..${max}`);
  if (address + count > 65536) throw new RangeError(`${count} items from ${address} run past 65535`);
}

/** FC1/2/3/4 by table; at most 2000 coils/inputs or 125 registers per request. */
export function buildReadPdu(table: Table, start: number, count: number): Buffer {
  const fc = READ_FC[table];
  checkSpan(start, count, fc <= 2 ? 2000 : 125);
  const pdu = Buffer.allocUnsafe(5);
  pdu[0] = fc;
  pdu.writeUInt16BE(start, 1);
  pdu.writeUInt16BE(count, 3);
  return pdu;
}

export function buildWriteCoilPdu(address: number, value: boolean): Buffer {
  checkSpan(address, 1, 1);
  const pdu = Buffer.allocUnsafe(5);
  pdu[0] = FC.writeSingleCoil;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(value ? 0xff00 : 0x0000, 3);
  return pdu;
}

/** FC6 for exactly one register (what single-register-only devices understand), else FC16. */
export function buildWriteRegistersPdu(address: number, regs: Buffer): Buffer {
  if (regs.length % 2 !== 0) throw new RangeError(`register data is ${regs.length} bytes, not whole registers`);
  const count = regs.length / 2;
  checkSpan(address, count, 123);
  if (count === 1) {
    const pdu = Buffer.allocUnsafe(5);
    pdu[0] = FC.writeSingleRegister;
    pdu.writeUInt16BE(address, 1);
    regs.copy(pdu, 3);
    return pdu;
  }
  const pdu = Buffer.allocUnsafe(6 + regs.length);
  pdu[0] = FC.writeMultipleRegisters;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(count, 3);
  pdu[5] = regs.length;
  regs.copy(pdu, 6);
  return pdu;
}

export function buildWriteCoilsPdu(address: number, values: boolean[]): Buffer {
  checkSpan(address, values.length, 1968);
  const bytes = Math.ceil(values.length / 8);
  const pdu = Buffer.alloc(6 + bytes);
  pdu[0] = FC.writeMultipleCoils;
  pdu.writeUInt16BE(address, 1);
  pdu.writeUInt16BE(values.length, 3);
  pdu[5] = bytes;
  values.forEach((v, i) => {
    if (v) pdu[6 + (i >> 3)] |= 1 << (i & 7);
  });
  return pdu;
}

/** PDU length of a normal (non-exception) response to `requestPdu`. */
export function expectedResponseLength(requestPdu: Buffer): number {
  const fc = requestPdu[0];
  switch (fc) {
    case 1:
    case 2:
      return 2 + Math.ceil(requestPdu.readUInt16BE(3) / 8);
    case 3:
    case 4:
      return 2 + 2 * requestPdu.readUInt16BE(3);
    case 5:
    case 6:
    case 15:
    case 16:
      return 5;
    default:
      throw new RangeError(`function code ${fc} is not one this client sends`);
  }
}

export type ParsedResponse = { ok: true; data: Buffer } | { ok: false; exception: number; name: string };
const EMPTY = Buffer.alloc(0);

export function parseResponsePdu(requestPdu: Buffer, responsePdu: Buffer): ParsedResponse {
  const fc = requestPdu[0];
  const got = responsePdu[0];
  if (got === undefined) throw new FrameError('short_frame', 'empty response');
  if (got === (fc | 0x80)) {
    if (responsePdu.length !== 2) throw new FrameError('bad_length', `exception response of ${responsePdu.length} bytes, not 2`);
    const code = responsePdu[1];
    return { ok: false, exception: code, name: exceptionName(code) };
  }
  if (got !== fc) throw new FrameError('wrong_function', `function code ${got} in response to ${fc}`);
  const expected = expectedResponseLength(requestPdu);
  if (fc <= 4) {
    if (responsePdu.length < 2) throw new FrameError('short_frame', `read response of ${responsePdu.length} byte(s)`);
    const count = responsePdu[1];
    if (count !== expected - 2 || responsePdu.length !== expected) {
      throw new FrameError('bad_length', `byte count ${count} in a ${responsePdu.length}-byte response, expected ${expected - 2}`);
    }
    return { ok: true, data: responsePdu.subarray(2) };
  }
  if (responsePdu.length !== expected) throw new FrameError('bad_length', `write response of ${responsePdu.length} bytes, not 5`);
  // FC5/6 echo address and value; FC15/16 echo address and quantity: bytes 1..4 either way.
  if (responsePdu.compare(requestPdu, 1, 5, 1, 5) !== 0) {
    throw new FrameError(
      'bad_echo',
      `write response echoes ${responsePdu.toString('hex', 1, 5)}, sent ${requestPdu.toString('hex', 1, 5)}`,
    );
  }
  return { ok: true, data: EMPTY };
}

// ---- Modbus TCP (MBAP header: transaction, protocol 0, length, unit) ----

export interface TcpFrame {
  transactionId: number;
  unit: number;
  pdu: Buffer;
}

export function encodeTcpFrame(transactionId: number, unit: number, pdu: Buffer): Buffer {
  if (pdu.length < 1 || pdu.length > 253) throw new RangeError(`a PDU is 1..253 bytes, not ${pdu.length}`);
  const frame = Buffer.allocUnsafe(7 + pdu.length);
  frame.writeUInt16BE(transactionId & 0xffff, 0);
  frame.writeUInt16BE(0, 2);
  frame.writeUInt16BE(pdu.length + 1, 4);
  frame[6] = unit;
  pdu.copy(frame, 7);
  return frame;
}

/**
 * Splits a TCP byte stream into frames. PDUs are views into the pushed bytes. After a
 * FrameError the stream is out of step: the caller should drop the connection (the
 * reader discards what it held so it does not throw on the same bytes again).
 */
export class TcpFrameReader {
  private pending: Buffer = EMPTY;

  push(chunk: Buffer): TcpFrame[] {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: TcpFrame[] = [];
    while (buf.length >= 6) {
      const protocol = buf.readUInt16BE(2);
      const length = buf.readUInt16BE(4);
      if (protocol !== 0 || length < 2 || length > 254) {
        this.pending = EMPTY;
        throw new FrameError('bad_length', `MBAP header with protocol ${protocol}, length ${length}`);
      }
      if (buf.length < 6 + length) break;
      frames.push({ transactionId: buf.readUInt16BE(0), unit: buf[6], pdu: buf.subarray(7, 6 + length) });
      buf = buf.subarray(6 + length);
    }
    this.pending = buf;
    return frames;
  }

  reset(): void {
    this.pending = EMPTY;
  }
}

// ---- Modbus RTU ----

const CRC_TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  CRC_TABLE[i] = c;
}

/** Modbus CRC-16 (poly 0xA001 reflected, init 0xFFFF); sent low byte first. */
export function crc16(buf: Buffer, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]) & 0xff];
  return crc;
}

export function encodeRtuFrame(unit: number, pdu: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(pdu.length + 3);
  frame[0] = unit;
  pdu.copy(frame, 1);
  frame.writeUInt16LE(crc16(frame, 0, pdu.length + 1), pdu.length + 1);
  return frame;
}

/**
 * Collects the response to one RTU request. RTU has no length field, so the frame ends
 * at the length the request implies (or 5 bytes for an exception); bytes past it are
 * ignored. Use a new reader per request.
 */
export class RtuResponseReader {
  private readonly buf: Buffer;
  private received = 0;
  private readonly fc: number;
  private readonly normalLength: number;

  constructor(
    private readonly unit: number,
    requestPdu: Buffer,
  ) {
    this.fc = requestPdu[0]!;
    this.normalLength = 1 + expectedResponseLength(requestPdu) + 2;
    this.buf = Buffer.allocUnsafe(Math.max(this.normalLength, 5));
  }

  /** Whether any byte arrived: a timeout then is a short frame rather than no answer. */
  get partial(): boolean {
    return this.received > 0;
  }

  push(chunk: Buffer): { pdu: Buffer } | null {
    const room = this.buf.length - this.received;
    if (room > 0) this.received += chunk.copy(this.buf, this.received, 0, Math.min(room, chunk.length));
    if (this.received < 2) return null;
    const fc = this.buf[1];
    // Without a length field an unexpected function code leaves the frame's end unknown.
    if (fc !== this.fc && fc !== (this.fc | 0x80)) throw new FrameError('wrong_function', `function code ${fc} in response to ${this.fc}`);
    const length = fc & 0x80 ? 5 : this.normalLength;
    if (this.received < length) return null;
    const crc = this.buf.readUInt16LE(length - 2);
    if (crc !== crc16(this.buf, 0, length - 2)) throw new FrameError('bad_crc', `CRC ${crc.toString(16)} does not match the frame`);
    if (this.buf[0] !== this.unit) throw new FrameError('wrong_unit', `response from unit ${this.buf[0]}, asked ${this.unit}`);
    return { pdu: this.buf.subarray(1, length - 2) };
  }
}

/** One character on the line: start + 8 data + parity/stop + stop = 11 bits by default. */
export function rtuCharTimeMs(baudRate: number, bitsPerChar = 11): number {
  return (bitsPerChar * 1000) / baudRate;
}

/** Silence that ends a frame: 3.5 characters, but at least 1.75 ms above 19200 baud (spec). */
export function rtuInterFrameMs(baudRate: number): number {
  const t = 3.5 * rtuCharTimeMs(baudRate);
  return baudRate > 19200 ? Math.max(t, 1.75) : t;
}
