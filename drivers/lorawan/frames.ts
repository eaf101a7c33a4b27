// LoRaWAN 1.0.x frames beyond parsing (lora-packet parses): the 32-bit frame counter,
// MAC commands the network server answers, and the frames it sends (data down,
// JoinAccept).
import { cryptFrmPayload, dataMic, encryptJoinAccept } from './crypto.js';

/** The full uplink counter from the 16 bits on the air, given the last accepted one (-1: none). */
export function fullFCnt(last: number, low16: number): number {
  if (last < 0) return low16;
  // The candidate nearest the last counter: far below it the 16 bits rolled over; far
  // above it, an old frame from before the last rollover. A replay's MIC still checks with
  // the value found here, and the caller then refuses it as replayed.
  const c = Math.floor(last / 0x10000) * 0x10000 + low16;
  if (c < last && last - c > 0x8000) return c + 0x10000; // may pass 2^32 - 1: the caller refuses it
  if (c > last && c - last > 0x8000 && c >= 0x10000) return c - 0x10000;
  return c;
}

/** Uplink MAC commands (CID → payload length), LoRaWAN 1.0.3 §5. */
const UPLINK_MAC_LENGTH: Record<number, number> = {
  0x02: 0, // LinkCheckReq
  0x03: 1, // LinkADRAns
  0x04: 0, // DutyCycleAns
  0x05: 1, // RXParamSetupAns
  0x06: 2, // DevStatusAns
  0x07: 1, // NewChannelAns
  0x08: 0, // RXTimingSetupAns
  0x09: 0, // TxParamSetupAns
  0x0a: 1, // DlChannelAns
  0x0d: 0, // DeviceTimeReq
};
export const LINK_CHECK = 0x02;
export const DEVICE_TIME = 0x0d;

export interface MacCommand {
  cid: number;
  payload: Buffer;
}

/** Splits FOpts (or an FPort 0 payload) into MAC commands; `unknown` is set when parsing had to stop. */
export function parseMacCommands(buf: Buffer): { commands: MacCommand[]; unknown: number | null } {
  const commands: MacCommand[] = [];
  let i = 0;
  while (i < buf.length) {
    const cid = buf[i];
    const len = UPLINK_MAC_LENGTH[cid];
    if (len === undefined || i + 1 + len > buf.length) return { commands, unknown: cid };
    commands.push({ cid, payload: buf.subarray(i + 1, i + 1 + len) });
    i += 1 + len;
  }
  return { commands, unknown: null };
}

// Demodulation floor by spreading factor (SX1301 datasheet), for LinkCheckAns' margin.
const DEMOD_FLOOR_DB: Record<number, number> = { 7: -7.5, 8: -10, 9: -12.5, 10: -15, 11: -17.5, 12: -20 };

/** LinkCheckAns: margin (dB above the demodulation floor of the best gateway) and gateway count. */
export function linkCheckAns(bestSnr: number, datr: string, gateways: number): Buffer {
  const sf = Number(/^SF(\d+)/.exec(datr)?.[1] ?? 12);
  const margin = Math.max(0, Math.min(254, Math.round(bestSnr - (DEMOD_FLOOR_DB[sf] ?? -20))));
  return Buffer.from([LINK_CHECK, margin, Math.min(255, gateways)]);
}

const GPS_EPOCH_MS = Date.UTC(1980, 0, 6);
/** GPS time runs ahead of UTC by the leap seconds since 1980 (18 since 2017; none announced since). */
const GPS_LEAP_SECONDS = 18;

/** DeviceTimeAns for an uplink received at `utcMs`: GPS seconds (uint32) and 1/256 s. */
export function deviceTimeAns(utcMs: number): Buffer {
  const gpsMs = utcMs - GPS_EPOCH_MS + GPS_LEAP_SECONDS * 1000;
  const out = Buffer.alloc(6);
  out[0] = DEVICE_TIME;
  out.writeUInt32LE(Math.floor(gpsMs / 1000) >>> 0, 1);
  out[5] = Math.floor(((gpsMs % 1000) * 256) / 1000);
  return out;
}

export interface DataDown {
  devAddr: number;
  fCnt: number;
  confirmed: boolean;
  ack: boolean;
  fPending: boolean;
  /** MAC answers, sent in clear in FOpts (≤ 15 bytes). */
  fOpts: Buffer;
  fPort?: number;
  payload?: Buffer;
  nwkSKey: Buffer;
  appSKey: Buffer;
}

/** A data downlink's PHYPayload: MHDR | DevAddr | FCtrl | FCnt | FOpts | [FPort | FRMPayload] | MIC. */
export function buildDataDown(d: DataDown): Buffer {
  if (d.fOpts.length > 15) throw new Error(`FOpts of ${d.fOpts.length} bytes (15 at most)`);
  const head = Buffer.alloc(8);
  head[0] = d.confirmed ? 0xa0 : 0x60;
  head.writeUInt32LE(d.devAddr >>> 0, 1);
  head[5] = (d.ack ? 0x20 : 0) | (d.fPending ? 0x10 : 0) | d.fOpts.length;
  head.writeUInt16LE(d.fCnt & 0xffff, 6);
  const parts = [head, d.fOpts];
  if (d.fPort !== undefined) {
    const key = d.fPort === 0 ? d.nwkSKey : d.appSKey;
    parts.push(Buffer.from([d.fPort]), cryptFrmPayload(key, 'down', d.devAddr, d.fCnt, d.payload ?? Buffer.alloc(0)));
  }
  const msg = Buffer.concat(parts);
  return Buffer.concat([msg, dataMic(d.nwkSKey, 'down', d.devAddr, d.fCnt, msg)]);
}

export interface JoinAcceptFields {
  appNonce: Buffer; // 3 bytes, wire order
  netId: Buffer; // 3 bytes, wire order
  devAddr: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rxDelayS: number;
  cfList: Buffer | null;
}

/** An encrypted JoinAccept: MHDR 0x20 | AppNonce | NetID | DevAddr | DLSettings | RxDelay | [CFList] | MIC. */
export function buildJoinAccept(appKey: Buffer, f: JoinAcceptFields): Buffer {
  const fields = Buffer.alloc(12);
  f.appNonce.copy(fields, 0);
  f.netId.copy(fields, 3);
  fields.writeUInt32LE(f.devAddr >>> 0, 6);
  fields[10] = ((f.rx1DrOffset & 0x07) << 4) | (f.rx2Dr & 0x0f);
  fields[11] = f.rxDelayS & 0x0f;
  return encryptJoinAccept(appKey, 0x20, f.cfList ? Buffer.concat([fields, f.cfList]) : fields);
}
