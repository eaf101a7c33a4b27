// One Modbus line (a TCP endpoint or an RS-485 bus): every request on it is strictly
// serialised, writes jump ahead of queued polls, and each request gets a timeout and a
// bounded number of retries. Exceptions are answers, not failures: they are not retried.
import type { ModbusMetrics } from './metrics.js';
import { FrameError, parseResponsePdu } from './frames.js';
import type { ModbusLineConfig } from './schema.js';
import { ModbusTimeoutError, createTransport, type Transport } from './transport.js';

export type Priority = 'write' | 'poll';

export class ModbusException extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
  ) {
    super(`Modbus exception ${code} (${codeName})`);
    this.name = 'ModbusException';
  }
}

interface Job {
  unit: number;
  pdu: Buffer;
  retries: number;
  resolve: (data: Buffer) => void;
  reject: (err: Error) => void;
}

/** Why a request failed, as counted in outpost_modbus_requests_total{result}. */
export function failureKind(err: unknown): string {
  if (err instanceof ModbusException) return 'exception';
  if (err instanceof ModbusTimeoutError) return err.partial ? 'short_frame' : 'timeout';
  if (err instanceof FrameError) return err.reason;
  return 'connect_error';
}

export class ModbusLine {
  private readonly writes: Job[] = [];
  private readonly polls: Job[] = [];
  private running = false;
  private closed = false;
  private lastDone = 0;
  readonly transport: Transport;

  constructor(
    readonly cfg: ModbusLineConfig,
    private readonly metrics: ModbusMetrics,
    transport?: Transport,
  ) {
    this.transport = transport ?? createTransport(cfg);
    this.transport.onDiscard = (reason) => this.metrics.modbusFrameErrors.inc({ line: cfg.id, reason });
  }

  get queued(): number {
    return this.writes.length + this.polls.length;
  }

  /**
   * Queues one request and resolves with the response data (register or coil bytes).
   * `retries` overrides the line's retry count (an offline device's probe uses 0).
   */
  request(unit: number, pdu: Buffer, priority: Priority, retries = this.cfg.retries): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error(`Modbus line ${this.cfg.id} is closed`));
    return new Promise<Buffer>((resolve, reject) => {
      (priority === 'write' ? this.writes : this.polls).push({ unit, pdu, retries, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      for (let job = this.next(); job; job = this.next()) await this.execute(job);
    } finally {
      this.running = false;
    }
  }

  private next(): Job | undefined {
    return this.writes.shift() ?? this.polls.shift();
  }

  private async execute(job: Job): Promise<void> {
    const { id } = this.cfg;
    for (let attempt = 0; ; attempt++) {
      const gap = this.lastDone + this.cfg.interFrameDelayMs - performance.now();
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      try {
        const pdu = await this.transport.request(job.unit, job.pdu, this.cfg.timeoutMs);
        this.lastDone = performance.now();
        const parsed = parseResponsePdu(job.pdu, pdu);
        if (!parsed.ok) {
          this.metrics.modbusRequests.inc({ line: id, result: 'exception' });
          return job.reject(new ModbusException(parsed.exception, parsed.name));
        }
        this.metrics.modbusRequests.inc({ line: id, result: 'ok' });
        return job.resolve(parsed.data);
      } catch (err) {
        this.lastDone = performance.now();
        const kind = failureKind(err);
        this.metrics.modbusRequests.inc({ line: id, result: kind });
        if (err instanceof FrameError || kind === 'short_frame') this.metrics.modbusFrameErrors.inc({ line: id, reason: kind });
        const retryable = kind !== 'connect_error' && !this.closed;
        if (!retryable || attempt >= job.retries) return job.reject(err as Error);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error(`Modbus line ${this.cfg.id} is closed`);
    for (const job of [...this.writes.splice(0), ...this.polls.splice(0)]) job.reject(err);
    await this.transport.close();
  }
}
