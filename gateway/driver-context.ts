// The context each driver gets (gateway/contract/driver.ts). It does the ingest
// bookkeeping every driver would otherwise repeat: readings received are counted, input
// the store refuses is classified by its typed error and counted, and store drops are
// logged once a minute. Drivers log their own input errors (with device context).
import { storeRejectReason } from './contract/errors.js';
import type { DriverContext, IngestOptions } from './contract/driver.js';
import type { Bus } from './bus.js';
import type { DeviceRegistry } from './devices.js';
import { LogLimiter, type Logger } from './kernel/log.js';
import type { Metrics } from './metrics.js';
import type { StoreWriter } from './store/writer.js';
import type { Reading } from './contract/types.js';

export interface ContextDeps {
  site: { id: string; dataDir: string; timezone: string };
  log: Logger;
  metrics: Metrics;
  bus: Bus;
  devices: DeviceRegistry;
  writer: () => StoreWriter;
  emitEvent(type: string, component: string, data?: unknown, subject?: string): Promise<void>;
  recall(point: string): Promise<ReadonlyMap<string, number>>;
}

/** A maker of driver contexts for one gateway (store drops are logged once a minute per driver and reason). */
export function driverContexts(deps: ContextDeps): (name: string, fail: (err: Error) => void) => DriverContext {
  const storeDropLog = new LogLimiter(60_000);
  return (name, fail) => driverContext(name, deps, storeDropLog, fail);
}

function driverContext(name: string, deps: ContextDeps, storeDropLog: LogLimiter, fail: (err: Error) => void): DriverContext {
  const log = deps.log.child({ driver: name });
  const inputLog = new LogLimiter(60_000);
  const { metrics } = deps;
  const reject = (reason: string, count = 1) => {
    metrics.rejects.inc({ driver: name, reason }, count);
    if (reason !== 'queue_full' && reason !== 'store_error') return;
    const { log: shouldLog, suppressed } = storeDropLog.shouldLog(`${name}:${reason}`);
    if (shouldLog) log.warn({ reason, count, suppressedSinceLastLog: suppressed }, 'input dropped: the store could not take it');
  };
  const ingest = async (readings: readonly Reading[], opts: IngestOptions = {}): Promise<void> => {
    metrics.readingsReceived.inc({ driver: name }, readings.length);
    if (deps.bus.listenerCount('readings') > 0) deps.bus.emit('readings', readings);
    const { committed } = await deps.writer().enqueue(readings, [], opts);
    if (opts.until !== 'queued') return committed;
    committed.catch((err: unknown) => reject(storeRejectReason(err), readings.length));
  };
  return {
    site: deps.site,
    log,
    metrics: metrics.forDriver(name),
    devices: deps.devices,
    ingest,
    offer: (readings, opts = {}) =>
      ingest(readings, { ...opts, until: 'queued' }).then(
        () => true,
        (err: unknown) => {
          reject(storeRejectReason(err), readings.length);
          return false;
        },
      ),
    emitEvent: (type, data, subject) => deps.emitEvent(type, name, data, subject),
    recall: (point) => deps.recall(point),
    reject,
    warnLimited: (key, fields, msg) => {
      const { log: shouldLog, suppressed } = inputLog.shouldLog(key);
      if (shouldLog) log.warn({ ...fields, suppressedSinceLastLog: suppressed }, msg);
    },
    authFailure: (reason) => metrics.authFailures.inc({ surface: name, reason }),
    rateLimited: (kind) => metrics.rateLimited.inc({ surface: name, kind }),
    fail,
  };
}
