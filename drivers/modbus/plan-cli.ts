// `outpost modbus plan`: shows an installer which read requests each Modbus device will be
// polled with, so maxGap and the per-request limits can be tuned before going on site.
import type { SiteView } from '../../gateway/contract/descriptor.js';
import { FUNCTION_CODE, formatPlan, planRequests, planWithoutCoalescing, unusedCount } from './planner.js';
import { resolvePoints } from './points.js';
import type { ModbusDeviceConfig } from './schema.js';

export function runModbusPlan(site: SiteView<ModbusDeviceConfig>, opts: { device?: string; json?: boolean }): string {
  let devices = site.devices;
  if (opts.device !== undefined) {
    const known = site.devices.map((d) => d.id).join(', ') || 'none';
    const found = site.devices.find((d) => d.id === opts.device);
    if (!found && !site.deviceIds.includes(opts.device)) throw new Error(`unknown device "${opts.device}" (Modbus devices: ${known})`);
    if (!found) throw new Error(`device "${opts.device}" has no modbus section (Modbus devices: ${known})`);
    devices = [found];
  }

  const plans = devices.map((d) => {
    const dev = d.config;
    const { points, problems } = resolvePoints(dev);
    // loadConfigFile already reports these; this guards configs built in code.
    if (problems.length > 0) throw new Error(`device "${d.id}": ${problems.map((p) => p.message).join('; ')}`);
    try {
      return { id: d.id, dev, points, requests: planRequests(points, dev), uncoalesced: planWithoutCoalescing(points).length };
    } catch (err) {
      throw new Error(`device "${d.id}": ${(err as Error).message}`, { cause: err });
    }
  });
  const totals = {
    devices: plans.length,
    points: plans.reduce((n, p) => n + p.points.length, 0),
    requests: plans.reduce((n, p) => n + p.requests.length, 0),
    uncoalesced: plans.reduce((n, p) => n + p.uncoalesced, 0),
  };

  if (opts.json) {
    const out = plans.map((p) => ({
      device: p.id,
      unit: p.dev.unit,
      line: p.dev.line,
      addressing: p.dev.addressing,
      requests: p.requests.map((r) => ({
        pollMs: r.pollMs,
        table: r.table,
        functionCode: FUNCTION_CODE[r.table],
        start: r.start,
        count: r.count,
        unused: unusedCount(r),
        points: r.points.map((pt) => pt.name),
      })),
    }));
    return JSON.stringify({ devices: out, totals }, null, 2);
  }

  if (plans.length === 0) return 'no Modbus devices in this config (no device has a modbus section)';
  const blocks = plans.map((p) => formatPlan(p.id, p.dev.unit, p.dev.line, p.requests, p.dev.addressing));
  const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
  const total =
    `${n(totals.devices, 'device', 'devices')}, ${n(totals.points, 'point', 'points')}, ` +
    `${n(totals.requests, 'request', 'requests')} per cycle-set (uncoalesced: ${totals.uncoalesced})`;
  return [...blocks, total].join('\n\n');
}
