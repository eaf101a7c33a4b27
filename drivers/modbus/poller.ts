// Polls one Modbus device: its planned requests run on timers (one per poll interval),
// values are decoded and filtered by each point's report mode, and failures drive the
// device's online state. A device that stops answering is marked offline and probed
// only every offlinePollMs with no retries, so it cannot stall the other devices on
// the same bus; the first good answer brings it back.
import type { DriverContext } from '../../gateway/contract/driver.js';
import type { ModbusMetrics } from './metrics.js';
import type { Quality, Reading, ReadingValue } from '../../gateway/contract/types.js';
import { decodeBit, decodePoint } from './codec.js';
import { buildReadPdu } from './frames.js';
import { ModbusException, failureKind, type ModbusLine } from './line.js';
import type { PlannedRequest } from './planner.js';
import type { ResolvedPoint } from './points.js';
import type { ModbusDeviceConfig } from './schema.js';

interface RequestState {
  req: PlannedRequest;
  pdu: Buffer;
  busy: boolean;
  /** Last exception code seen, so an event is raised on a change, not on every poll. */
  exception: number | null;
}

export interface PollerHealth {
  online: boolean;
  consecutiveFailures: number;
  lastError: string | null;
}

export class DevicePoller {
  private readonly states: RequestState[];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly last = new Map<string, { value: ReadingValue; quality: Quality }>();
  // Polling starts as if online; `announced` turns true with the first answer.
  private online = true;
  private announced = false;
  private failures = 0;
  private lastError: string | null = null;
  private stopped = false;

  constructor(
    readonly id: string,
    readonly zone: string,
    readonly cfg: ModbusDeviceConfig,
    readonly points: readonly ResolvedPoint[],
    requests: readonly PlannedRequest[],
    readonly line: ModbusLine,
    private readonly ctx: DriverContext<ModbusMetrics>,
  ) {
    this.states = requests.map((req) => ({ req, pdu: buildReadPdu(req.table, req.start, req.count), busy: false, exception: null }));
  }

  start(): void {
    const byInterval = new Map<number, RequestState[]>();
    for (const s of this.states) byInterval.set(s.req.pollMs, [...(byInterval.get(s.req.pollMs) ?? []), s]);
    for (const [ms, states] of byInterval) {
      const tick = () => {
        if (!this.online) return;
        let overruns = 0;
        for (const s of states) {
          if (s.busy) overruns++;
          else void this.poll(s, this.line.cfg.retries);
        }
        if (overruns > 0) this.ctx.metrics.modbusPollOverruns.inc({ device: this.id }, overruns);
      };
      this.timers.push(setInterval(tick, ms));
      tick();
    }
    // While offline, one probe (the first request, no retries) every offlinePollMs.
    this.timers.push(
      setInterval(() => {
        if (!this.online && this.states[0]) void this.poll(this.states[0], 0);
      }, this.cfg.offlinePollMs),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  health(): PollerHealth {
    return { online: this.online, consecutiveFailures: this.failures, lastError: this.lastError };
  }

  // A request stays busy until its readings are queued in the store, so a full store
  // queue stretches polls (counted as overruns) instead of dropping readings.
  private async poll(s: RequestState, retries: number): Promise<void> {
    if (s.busy) return;
    s.busy = true;
    try {
      const data = await this.line.request(this.cfg.unit, s.pdu, 'poll', retries);
      if (this.stopped) return;
      this.answered();
      if (s.exception !== null) s.exception = null;
      await this.emit(this.decodeAll(s.req, data));
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof ModbusException) return this.exception(s, err);
      this.failed(err as Error);
    } finally {
      s.busy = false;
    }
  }

  private decodeAll(req: PlannedRequest, data: Buffer): Reading[] {
    const now = Date.now();
    const out: Reading[] = [];
    for (const p of req.points) {
      const offset = p.address - req.start;
      let value: ReadingValue;
      try {
        value = req.table === 'coil' || req.table === 'discrete' ? decodeBit(data, offset) : decodePoint(p, data, offset * 2);
      } catch (err) {
        this.ctx.reject('decode_error');
        this.ctx.log.warn({ device: this.id, point: p.name, err: (err as Error).message }, 'Modbus value could not be decoded');
        continue;
      }
      if (this.shouldReport(p, value, 'good')) out.push(this.reading(now, p, value, 'good'));
    }
    return out;
  }

  /** Applies the point's report mode; remembers what was last reported. */
  private shouldReport(p: ResolvedPoint, value: ReadingValue, quality: Quality): boolean {
    const prev = this.last.get(p.name);
    let report = true;
    if (prev && prev.quality === quality && p.report !== 'always') {
      if (p.report === 'change') report = prev.value !== value && !(Number.isNaN(prev.value) && Number.isNaN(value));
      else
        report =
          typeof value === 'number' && typeof prev.value === 'number' ? Math.abs(value - prev.value) >= p.deadband : prev.value !== value;
    }
    if (report) this.last.set(p.name, { value, quality });
    return report;
  }

  private reading(ts: number, p: ResolvedPoint, value: ReadingValue, quality: Quality): Reading {
    const r: Reading = { ts, device: this.id, point: p.name, value, quality };
    if (p.unit !== undefined) r.unit = p.unit;
    return r;
  }

  private async emit(readings: Reading[]): Promise<void> {
    if (readings.length === 0) return;
    this.ctx.devices.seen(this.id, Date.now(), 'modbus', this.zone);
    await this.ctx.offer(readings, { waitForSpace: true });
  }

  // The device answered with an exception: its points read as quality bad (value NaN,
  // served as null), and an event is raised when the exception starts or changes.
  private exception(s: RequestState, err: ModbusException): void {
    this.answered();
    const now = Date.now();
    void this.emit(s.req.points.filter((p) => this.shouldReport(p, Number.NaN, 'bad')).map((p) => this.reading(now, p, Number.NaN, 'bad')));
    if (s.exception === err.code) return;
    s.exception = err.code;
    const { table, start, count } = s.req;
    void this.ctx
      .emitEvent(
        'modbus.exception',
        { device: this.id, unit: this.cfg.unit, table, start, count, code: err.code, name: err.codeName },
        this.id,
      )
      .catch(() => undefined);
  }

  private answered(): void {
    this.failures = 0;
    if (!this.announced) {
      // First contact: show the device online in the registry; no event (nothing changed).
      this.announced = true;
      this.ctx.devices.setOnline(this.id, true, 'modbus', this.zone);
    }
    if (this.online) return;
    this.online = true;
    this.lastError = null;
    this.ctx.devices.setOnline(this.id, true, 'modbus', this.zone);
    void this.ctx.emitEvent('device.online', { device: this.id, zone: this.zone, reason: 'answered' }, this.id).catch(() => undefined);
  }

  private failed(err: Error): void {
    this.failures++;
    this.lastError = `${failureKind(err)}: ${err.message}`;
    if (!this.online || this.failures < this.cfg.offlineAfterFailures) return;
    this.online = false;
    this.ctx.devices.setOnline(this.id, false, 'modbus', this.zone);
    this.ctx.log.warn(
      { device: this.id, error: this.lastError, probeEveryMs: this.cfg.offlinePollMs },
      'Modbus device not answering: marked offline',
    );
    void this.ctx
      .emitEvent('device.offline', { device: this.id, zone: this.zone, reason: this.lastError, failures: this.failures }, this.id)
      .catch(() => undefined);
  }
}
