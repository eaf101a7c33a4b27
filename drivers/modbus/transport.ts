// Byte transports for one Modbus line. A transport sends one request and waits for its
// answer; it never has two requests outstanding — the line (line.ts) serialises them.
//   tcp           Modbus TCP (MBAP header, transaction ids) over a TCP socket
//   rtu           RTU frames (unit + PDU + CRC) over a serial port
//   rtu-over-tcp  RTU frames through a serial server's raw TCP port
// Connections are opened on demand; after a failure the next attempt waits a capped,
// doubling backoff so a dead endpoint costs a fast failure, not a connect per request.
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FrameError, RtuResponseReader, TcpFrameReader, encodeRtuFrame, encodeTcpFrame, rtuInterFrameMs } from './frames.js';
import type { ModbusLineConfig } from './schema.js';
import { backoffDelay } from '../../gateway/kernel/backoff.js';

export class ModbusTimeoutError extends Error {
  constructor(
    readonly partial: boolean,
    ms: number,
  ) {
    super(partial ? `incomplete reply within ${ms} ms` : `no reply within ${ms} ms`);
    this.name = 'ModbusTimeoutError';
  }
}

export class ModbusConnectError extends Error {
  override name = 'ModbusConnectError';
}

export interface Transport {
  request(unit: number, pdu: Buffer, timeoutMs: number): Promise<Buffer>;
  close(): Promise<void>;
  /** Reasons for replies that had to be thrown away (late, wrong transaction, garbage). */
  onDiscard?: (reason: string) => void;
}

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30_000;

type Pending = { resolve: (pdu: Buffer) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };

/** Shared connect-on-demand with backoff for stream-based transports. */
abstract class StreamTransport implements Transport {
  protected stream: Duplex | null = null;
  private connecting: Promise<Duplex> | null = null;
  private failures = 0;
  private retryAt = 0;
  protected pending: Pending | null = null;
  protected closed = false;
  onDiscard?: (reason: string) => void;
  /** Longest reconnect backoff a request will wait out instead of failing (its timeout). */
  protected maxWaitMs = 0;

  protected abstract open(): Promise<Duplex>;
  protected abstract onData(chunk: Buffer): void;
  protected abstract send(stream: Duplex, unit: number, pdu: Buffer): Promise<void>;
  protected abstract expect(unit: number, pdu: Buffer): void;
  protected abstract partial(): boolean;

  async request(unit: number, pdu: Buffer, timeoutMs: number): Promise<Buffer> {
    this.maxWaitMs = timeoutMs;
    const stream = await this.ensureOpen();
    this.expect(unit, pdu);
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = null;
        reject(new ModbusTimeoutError(this.partial(), timeoutMs));
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
    });
    await this.send(stream, unit, pdu);
    return reply;
  }

  protected settle(result: Buffer | Error): void {
    const p = this.pending;
    if (!p) return this.onDiscard?.('late_reply');
    this.pending = null;
    clearTimeout(p.timer);
    if (result instanceof Error) p.reject(result);
    else p.resolve(result);
  }

  private async ensureOpen(): Promise<Duplex> {
    if (this.closed) throw new ModbusConnectError('line is closed');
    if (this.stream) return this.stream;
    if (!this.connecting) {
      const wait = this.retryAt - Date.now();
      // A short wait (the first reconnect after a dropped connection) is sat out, so one
      // blip does not fail every queued request; a long backoff fails fast instead.
      if (wait > 0 && wait > this.maxWaitMs)
        throw new ModbusConnectError(`not connected (next attempt in ${Math.ceil(wait / 100) / 10} s)`);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.stream) return this.stream;
      this.connecting = this.open().then(
        (stream) => {
          this.failures = 0;
          this.stream = stream;
          stream.on('data', (chunk: Buffer) => this.onData(chunk));
          const lost = (err?: Error) => this.lost(stream, err);
          stream.once('close', () => lost());
          stream.once('error', lost);
          return stream;
        },
        (err: Error) => {
          this.retryAt = Date.now() + backoffDelay(this.failures++, BACKOFF_START_MS, BACKOFF_MAX_MS);
          throw new ModbusConnectError(err.message);
        },
      );
      this.connecting.finally(() => (this.connecting = null)).catch(() => undefined);
    }
    return this.connecting;
  }

  private lost(stream: Duplex, err?: Error): void {
    if (this.stream !== stream) return;
    this.stream = null;
    stream.destroy();
    this.retryAt = Date.now() + BACKOFF_START_MS;
    if (this.pending) this.settle(new ModbusConnectError(`connection lost${err ? `: ${err.message}` : ''}`));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pending) this.settle(new ModbusConnectError('line closed'));
    const s = this.stream;
    this.stream = null;
    // A serial port's close can wait on the OS (e.g. a pty whose peer went away): give
    // it a moment, not the whole shutdown deadline.
    if (s) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        timer.unref();
        if (s.destroyed) return resolve();
        s.once('close', () => (clearTimeout(timer), resolve()));
        s.destroy();
      });
    }
  }
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, noDelay: true });
    const timer = setTimeout(() => sock.destroy(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connect to ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
  });
}

/** Modbus TCP: MBAP framing, a transaction id per request, late replies discarded. */
class TcpTransport extends StreamTransport {
  private reader = new TcpFrameReader();
  private txId = 0;
  private expectedTx = -1;
  private expectedUnit = -1;

  constructor(private readonly cfg: Extract<ModbusLineConfig, { transport: 'tcp' }>) {
    super();
  }

  protected open(): Promise<Duplex> {
    this.reader = new TcpFrameReader();
    return tcpConnect(this.cfg.host, this.cfg.port, this.cfg.timeoutMs);
  }

  protected expect(unit: number): void {
    this.txId = (this.txId + 1) & 0xffff;
    this.expectedTx = this.txId;
    this.expectedUnit = unit;
  }

  protected partial(): boolean {
    return false;
  }

  protected async send(stream: Duplex, unit: number, pdu: Buffer): Promise<void> {
    stream.write(encodeTcpFrame(this.txId, unit, pdu));
  }

  protected onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      // A garbled stream cannot be resynchronised: drop the connection.
      this.settle(err as Error);
      this.stream?.destroy();
      return;
    }
    for (const f of frames) {
      if (f.transactionId !== this.expectedTx) this.onDiscard?.('wrong_transaction');
      else if (f.unit !== this.expectedUnit)
        this.settle(new FrameError('wrong_unit', `reply from unit ${f.unit}, expected ${this.expectedUnit}`));
      else this.settle(f.pdu);
    }
  }
}

/** RTU framing over any byte stream, keeping the silent interval RTU needs between frames. */
class RtuTransport extends StreamTransport {
  private reader: RtuResponseReader | null = null;
  private lastActivity = 0;
  private readonly gapMs: number;

  constructor(
    private readonly openStream: () => Promise<Duplex>,
    baudRate: number,
  ) {
    super();
    this.gapMs = rtuInterFrameMs(baudRate);
  }

  protected open(): Promise<Duplex> {
    return this.openStream();
  }

  protected expect(unit: number, pdu: Buffer): void {
    this.reader = new RtuResponseReader(unit, pdu);
  }

  protected partial(): boolean {
    return this.reader?.partial ?? false;
  }

  protected async send(stream: Duplex, unit: number, pdu: Buffer): Promise<void> {
    const wait = this.lastActivity + this.gapMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.lastActivity = performance.now();
    stream.write(encodeRtuFrame(unit, pdu));
  }

  protected onData(chunk: Buffer): void {
    this.lastActivity = performance.now();
    if (!this.reader || !this.pending) return this.onDiscard?.('unexpected_bytes');
    try {
      const frame = this.reader.push(chunk);
      if (frame) {
        this.reader = null;
        this.settle(frame.pdu);
      }
    } catch (err) {
      this.reader = null;
      this.settle(err as Error);
    }
  }
}

async function openSerial(cfg: Extract<ModbusLineConfig, { transport: 'rtu' }>): Promise<Duplex> {
  // Loaded only for serial lines: the native binding is not needed for TCP-only sites.
  const { SerialPort } = await import('serialport');
  const port = new SerialPort({
    path: cfg.path,
    baudRate: cfg.baudRate,
    parity: cfg.parity,
    dataBits: cfg.dataBits as 7 | 8,
    stopBits: cfg.stopBits as 1 | 2,
    autoOpen: false,
  });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new Error(`${cfg.path}: ${err.message}`)) : resolve())));
  return port;
}

export function createTransport(cfg: ModbusLineConfig): Transport {
  switch (cfg.transport) {
    case 'tcp':
      return new TcpTransport(cfg);
    case 'rtu-over-tcp':
      return new RtuTransport(() => tcpConnect(cfg.host, cfg.port, cfg.timeoutMs), cfg.baudRate);
    case 'rtu':
      return new RtuTransport(() => openSerial(cfg), cfg.baudRate);
  }
}
