// The Modbus driver's own metrics: requests and garbled replies per line, poll overruns.
import type { MetricFactory } from '../../gateway/kernel/metrics.js';

export function modbusMetrics(f: MetricFactory) {
  return {
    modbusRequests: f.counter('outpost_modbus_requests_total', 'Modbus requests by line and result (ok, exception, timeout, ...)', [
      'line',
      'result',
    ]),
    modbusFrameErrors: f.counter(
      'outpost_modbus_frame_errors_total',
      'Garbled or unexpected Modbus replies, by reason (bad_crc, short_frame, ...)',
      ['line', 'reason'],
    ),
    modbusPollOverruns: f.counter('outpost_modbus_poll_overruns_total', 'Polls skipped because the previous one was still queued', [
      'device',
    ]),
  };
}
export type ModbusMetrics = ReturnType<typeof modbusMetrics>;
