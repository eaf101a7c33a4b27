// What one uplink stores: the radio side (counter, best RSSI/SNR, frequency, data rate,
// and each gateway's RSSI/SNR), and the decoded payload flattened to points
// (`{ gps_1: { latitude } }` → point `gps_1.latitude`).
import type { Reading } from '../../gateway/contract/types.js';
import type { Heard } from './network.js';
import type { RxPacket } from './gwmp.js';
import type { Region } from './regions.js';

/** The uplink counter's point: also where the counter is recovered from after a restart. */
export const FCNT_POINT = 'lora.fcnt';
const MAX_POINTS = 128;
const MAX_DEPTH = 4;

export function radioReadings(
  device: string,
  ts: number,
  fCnt: number,
  best: RxPacket,
  heard: readonly Heard[],
  region: Region,
): Reading[] {
  const r = (point: string, value: number): Reading => ({ ts, device, point, value });
  const out = [r(FCNT_POINT, fCnt), r('lora.rssi', best.rssi), r('lora.frequency', best.freq), r('lora.gateways', heard.length)];
  if (best.lsnr !== undefined) out.push(r('lora.snr', best.lsnr));
  const dr = region.uplinkDr(best.datr);
  if (dr !== null) out.push(r('lora.dr', dr));
  for (const h of heard) {
    out.push(r(`lora.rssi.${h.gateway.id}`, h.rx.rssi));
    if (h.rx.lsnr !== undefined) out.push(r(`lora.snr.${h.gateway.id}`, h.rx.lsnr));
  }
  return out;
}

/** Numbers, booleans and strings of a codec's `data`, nested keys joined with dots (bounded). */
export function decodedReadings(device: string, ts: number, data: Record<string, unknown>): Reading[] {
  const out: Reading[] = [];
  const walk = (v: unknown, path: string, depth: number): void => {
    if (out.length >= MAX_POINTS) return;
    if (typeof v === 'number') {
      if (Number.isFinite(v)) out.push({ ts, device, point: path, value: v });
    } else if (typeof v === 'boolean' || typeof v === 'string') {
      out.push({ ts, device, point: path, value: v });
    } else if (v && typeof v === 'object' && depth < MAX_DEPTH) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k, depth + 1);
    }
  };
  walk(data, '', 0);
  return out;
}
