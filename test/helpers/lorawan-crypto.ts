// An independent LoRaWAN 1.0.x (1.0.2/1.0.3) device-side implementation, written from the
// specification with node:crypto only, so that tests can check the driver (and lora-packet)
// against something that shares no code with either. Section numbers are LoRaWAN 1.0.3.
//
// Byte order, once for the whole file: every multi-byte field is LITTLE-endian on the wire
// (§1.2). In this API DevAddr, EUIs, keys and NetID are Buffers in the order they are
// PRINTED (big-endian, "26012E43", "70B3D57ED00000DC"); nonces and counters are numbers.
// The helpers reverse ids when writing or reading a frame. Keys are never reversed.
import { createCipheriv, createDecipheriv } from 'node:crypto';

export type Dir = 'up' | 'down';
/** A Buffer, or hex text (spaces allowed) for the same bytes. */
export type Bytes = Buffer | string;

export function bytes(b: Bytes, len?: number, what = 'value'): Buffer {
  const buf = typeof b === 'string' ? Buffer.from(b.replace(/[\s:-]/g, ''), 'hex') : b;
  if (len !== undefined && buf.length !== len) throw new RangeError(`${what} must be ${len} bytes, got ${buf.length}`);
  return buf;
}

const rev = (b: Buffer): Buffer => Buffer.from(b).reverse();

function aesEncryptBlocks(key: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-128-ecb', bytes(key, 16, 'key'), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

// RFC 4493 §2.3: multiply by x in GF(2^128); Rb = 0x87.
function dbl(b: Buffer): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = ((b[i] << 1) | (i < 15 ? b[i + 1] >> 7 : 0)) & 0xff;
  if (b[0] & 0x80) out[15] ^= 0x87;
  return out;
}

/** AES-CMAC (RFC 4493 §2.4): CBC-MAC, last block XOR K1 (complete) or padded 10* and XOR K2. */
export function aesCmac(key: Buffer, msg: Buffer): Buffer {
  const k1 = dbl(aesEncryptBlocks(key, Buffer.alloc(16)));
  const k2 = dbl(k1);
  const n = Math.max(1, Math.ceil(msg.length / 16));
  const complete = msg.length > 0 && msg.length % 16 === 0;
  const last = Buffer.alloc(16);
  msg.copy(last, 0, (n - 1) * 16);
  if (!complete) last[msg.length - (n - 1) * 16] = 0x80;
  const mask = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i] ^= mask[i];
  // CBC with a zero IV: the last ciphertext block is the tag.
  const c = createCipheriv('aes-128-cbc', bytes(key, 16, 'key'), Buffer.alloc(16));
  c.setAutoPadding(false);
  const out = Buffer.concat([c.update(msg.subarray(0, (n - 1) * 16)), c.update(last), c.final()]);
  return out.subarray(out.length - 16);
}

// A_i (§4.3.3) and B0 (§4.4) share this shape:
// tag | 4 x 0x00 | Dir | DevAddr (LE) | FCnt 32-bit (LE) | 0x00 | last
function block(tag: number, dir: Dir, devAddr: Buffer, fCnt: number, last: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = tag;
  b[5] = dir === 'up' ? 0 : 1;
  rev(bytes(devAddr, 4, 'DevAddr')).copy(b, 6);
  b.writeUInt32LE(fCnt >>> 0, 10);
  b[15] = last;
  return b;
}

/** FRMPayload encryption (§4.3.3): XOR with AES(K, A_i), i = 1..k. Its own inverse. */
export function encryptFrmPayload(key: Buffer, devAddr: Buffer, fCnt: number, dir: Dir, payload: Buffer): Buffer {
  const k = Math.ceil(payload.length / 16);
  const a = Buffer.concat(Array.from({ length: k }, (_, i) => block(0x01, dir, devAddr, fCnt, i + 1)));
  const s = aesEncryptBlocks(key, a);
  const out = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i] ^ s[i];
  return out;
}

/** Data-frame MIC (§4.4): first 4 bytes of CMAC(NwkSKey, B0 | msg), msg = MHDR..FRMPayload. */
export function dataMic(nwkSKey: Buffer, devAddr: Buffer, fCnt32: number, dir: Dir, msg: Buffer): Buffer {
  if (msg.length > 255) throw new RangeError('msg longer than 255 bytes');
  return aesCmac(nwkSKey, Buffer.concat([block(0x49, dir, devAddr, fCnt32, msg.length), msg])).subarray(0, 4);
}

// MHDR (§4.2): MType in bits 7..5, Major (0 = LoRaWAN R1) in bits 1..0.
export const MType = {
  JoinRequest: 0,
  JoinAccept: 1,
  UnconfirmedDataUp: 2,
  UnconfirmedDataDown: 3,
  ConfirmedDataUp: 4,
  ConfirmedDataDown: 5,
} as const;
const mhdr = (mtype: number): number => mtype << 5;

export interface DataUplinkFields {
  devAddr: Bytes;
  /** The full 32-bit counter: the frame carries the low 16 bits, the MIC and keystream all 32. */
  fCnt: number;
  confirmed: boolean;
  fPort?: number;
  payload?: Buffer;
  /** Plain MAC commands (1.0.x does not encrypt FOpts), at most 15 bytes. */
  fOpts?: Buffer;
  adr?: boolean;
  adrAckReq?: boolean;
  ack?: boolean;
  nwkSKey: Bytes;
  appSKey: Bytes;
}

/** A data uplink PHYPayload: MHDR | DevAddr | FCtrl | FCnt | FOpts | FPort | FRMPayload | MIC. */
export function buildDataUplink(f: DataUplinkFields): Buffer {
  const devAddr = bytes(f.devAddr, 4, 'DevAddr');
  const nwkSKey = bytes(f.nwkSKey, 16, 'NwkSKey');
  const fOpts = f.fOpts ?? Buffer.alloc(0);
  const payload = f.payload ?? Buffer.alloc(0);
  if (fOpts.length > 15) throw new RangeError('FOpts longer than 15 bytes');
  if (payload.length > 0 && f.fPort === undefined) throw new Error('FRMPayload needs an FPort');
  if (f.fPort === 0 && fOpts.length > 0) throw new Error('MAC commands may not be in both FOpts and FPort 0 (§4.3.1.6)');
  // FCtrl uplink (§4.3.1): ADR 7, ADRACKReq 6, ACK 5, ClassB/RFU 4, FOptsLen 3..0.
  const fCtrl = (f.adr ? 0x80 : 0) | (f.adrAckReq ? 0x40 : 0) | (f.ack ? 0x20 : 0) | fOpts.length;
  const fCnt = Buffer.alloc(2);
  fCnt.writeUInt16LE(f.fCnt & 0xffff);
  const parts = [
    Buffer.from([mhdr(f.confirmed ? MType.ConfirmedDataUp : MType.UnconfirmedDataUp)]),
    rev(devAddr),
    Buffer.from([fCtrl]),
    fCnt,
    fOpts,
  ];
  if (f.fPort !== undefined) {
    const key = f.fPort === 0 ? nwkSKey : bytes(f.appSKey, 16, 'AppSKey');
    parts.push(Buffer.from([f.fPort]), encryptFrmPayload(key, devAddr, f.fCnt, 'up', payload));
  }
  const msg = Buffer.concat(parts);
  return Buffer.concat([msg, dataMic(nwkSKey, devAddr, f.fCnt, 'up', msg)]);
}

export interface ParsedDataFrame {
  /** Printed (big-endian) order. */
  devAddr: Buffer;
  /** fCntHigh << 16 | the 16 bits on the wire. */
  fCnt: number;
  confirmed: boolean;
  adr: boolean;
  ack: boolean;
  fPending: boolean;
  fOpts: Buffer;
  fPort: number | undefined;
  /** Decrypted FRMPayload (with NwkSKey when FPort is 0). */
  payload: Buffer;
  micOk: boolean;
}

export interface FrameKeys {
  nwkSKey: Bytes;
  appSKey: Bytes;
  /** Upper 16 bits of the 32-bit counter, which the frame does not carry (default 0). */
  fCntHigh?: number;
}

function parseData(phy: Buffer, keys: FrameKeys, dir: Dir): ParsedDataFrame {
  if (phy.length < 12) throw new RangeError(`data frame too short: ${phy.length} bytes`);
  const mtype = phy[0] >> 5;
  const [unconfirmed, confirmed] =
    dir === 'up' ? [MType.UnconfirmedDataUp, MType.ConfirmedDataUp] : [MType.UnconfirmedDataDown, MType.ConfirmedDataDown];
  if (mtype !== unconfirmed && mtype !== confirmed) throw new Error(`MType ${mtype} is not a data ${dir}link`);
  const devAddr = rev(phy.subarray(1, 5));
  const fCtrl = phy[5];
  const fhdrEnd = 8 + (fCtrl & 0x0f);
  const micAt = phy.length - 4;
  if (fhdrEnd > micAt) throw new RangeError('FOpts run into the MIC');
  const fCnt = (((keys.fCntHigh ?? 0) & 0xffff) * 0x10000 + phy.readUInt16LE(6)) >>> 0;
  const nwkSKey = bytes(keys.nwkSKey, 16, 'NwkSKey');
  const fPort = fhdrEnd < micAt ? phy[fhdrEnd] : undefined;
  const enc = fPort === undefined ? Buffer.alloc(0) : phy.subarray(fhdrEnd + 1, micAt);
  const key = fPort === 0 ? nwkSKey : bytes(keys.appSKey, 16, 'AppSKey');
  return {
    devAddr,
    fCnt,
    confirmed: mtype === confirmed,
    // FCtrl (§4.3.1): ADR 7, ADRACKReq (up) / RFU (down) 6, ACK 5, ClassB (up) / FPending (down) 4.
    adr: (fCtrl & 0x80) !== 0,
    ack: (fCtrl & 0x20) !== 0,
    fPending: dir === 'down' && (fCtrl & 0x10) !== 0,
    fOpts: Buffer.from(phy.subarray(8, fhdrEnd)),
    fPort,
    payload: encryptFrmPayload(key, devAddr, fCnt, dir, enc),
    micOk: dataMic(nwkSKey, devAddr, fCnt, dir, phy.subarray(0, micAt)).equals(phy.subarray(micAt)),
  };
}

/** Parse, check and decrypt a data downlink (unconfirmed 0x60 or confirmed 0xA0). */
export function parseDataDownlink(phy: Buffer, keys: FrameKeys): ParsedDataFrame {
  return parseData(phy, keys, 'down');
}

/** The same for a data uplink (0x40 / 0x80), e.g. to read back what buildDataUplink made. */
export function parseDataUplink(phy: Buffer, keys: FrameKeys): ParsedDataFrame {
  return parseData(phy, keys, 'up');
}

/** JoinRequest (§6.2.4): MHDR | AppEUI (LE) | DevEUI (LE) | DevNonce (LE) | MIC; MIC = CMAC(AppKey)[0..3]. */
export function buildJoinRequest(f: { appKey: Bytes; joinEui: Bytes; devEui: Bytes; devNonce: number }): Buffer {
  const nonce = Buffer.alloc(2);
  nonce.writeUInt16LE(f.devNonce);
  const msg = Buffer.concat([
    Buffer.from([mhdr(MType.JoinRequest)]),
    rev(bytes(f.joinEui, 8, 'JoinEUI')),
    rev(bytes(f.devEui, 8, 'DevEUI')),
    nonce,
  ]);
  return Buffer.concat([msg, aesCmac(bytes(f.appKey, 16, 'AppKey'), msg).subarray(0, 4)]);
}

export interface JoinAcceptFields {
  /** AppNonce (JoinNonce in 1.1), 24 bits. */
  appNonce: number;
  /** Printed order, 3 bytes. */
  netId: Buffer;
  /** Printed order, 4 bytes. */
  devAddr: Buffer;
  dlSettings: { rx1DrOffset: number; rx2Dr: number };
  rxDelay: number;
  cfList?: Buffer;
}

/**
 * Device side of a JoinAccept (§6.2.5). The network "encrypts" with AES-ECB DECRYPT, so the
 * device recovers the plaintext with AES ENCRYPT. Plaintext: AppNonce (3, LE) | NetID (3, LE) |
 * DevAddr (4, LE) | DLSettings | RxDelay | CFList (0 or 16) | MIC; MIC = CMAC(AppKey, MHDR | all
 * before the MIC)[0..3].
 */
export function openJoinAccept(phy: Buffer, appKey: Bytes): JoinAcceptFields & { micOk: boolean; plaintext: Buffer } {
  if (phy.length !== 17 && phy.length !== 33) throw new RangeError(`JoinAccept must be 17 or 33 bytes, got ${phy.length}`);
  if (phy[0] >> 5 !== MType.JoinAccept) throw new Error(`MType ${phy[0] >> 5} is not a JoinAccept`);
  const key = bytes(appKey, 16, 'AppKey');
  const plain = aesEncryptBlocks(key, phy.subarray(1));
  const body = plain.subarray(0, plain.length - 4);
  const expect = aesCmac(key, Buffer.concat([phy.subarray(0, 1), body])).subarray(0, 4);
  const fields: JoinAcceptFields = {
    appNonce: body.readUIntLE(0, 3),
    netId: rev(body.subarray(3, 6)),
    devAddr: rev(body.subarray(6, 10)),
    // DLSettings (§5.4 / §6.2.5): bit 7 RFU (OptNeg in 1.1), RX1DRoffset 6..4, RX2DataRate 3..0.
    dlSettings: { rx1DrOffset: (body[10] >> 4) & 0x07, rx2Dr: body[10] & 0x0f },
    rxDelay: body[11],
  };
  if (body.length === 28) fields.cfList = Buffer.from(body.subarray(12));
  return { ...fields, micOk: expect.equals(plain.subarray(plain.length - 4)), plaintext: Buffer.concat([phy.subarray(0, 1), plain]) };
}

/** Network side, for tests that play the server: the inverse of openJoinAccept. */
export function sealJoinAccept(f: JoinAcceptFields, appKey: Bytes): Buffer {
  const key = bytes(appKey, 16, 'AppKey');
  const head = Buffer.alloc(12);
  head.writeUIntLE(f.appNonce, 0, 3);
  rev(bytes(f.netId, 3, 'NetID')).copy(head, 3);
  rev(bytes(f.devAddr, 4, 'DevAddr')).copy(head, 6);
  head[10] = ((f.dlSettings.rx1DrOffset & 0x07) << 4) | (f.dlSettings.rx2Dr & 0x0f);
  head[11] = f.rxDelay;
  const body = Buffer.concat([head, f.cfList ? bytes(f.cfList, 16, 'CFList') : Buffer.alloc(0)]);
  const mh = Buffer.from([mhdr(MType.JoinAccept)]);
  const plain = Buffer.concat([body, aesCmac(key, Buffer.concat([mh, body])).subarray(0, 4)]);
  const d = createDecipheriv('aes-128-ecb', key, null);
  d.setAutoPadding(false);
  return Buffer.concat([mh, d.update(plain), d.final()]);
}

/**
 * Session keys (§6.2.5): K = aes128_encrypt(AppKey, t | AppNonce (3, LE) | NetID (3, LE) |
 * DevNonce (2, LE) | pad16), t = 0x01 for NwkSKey, 0x02 for AppSKey. appNonce/netId/devNonce
 * are given as printed (big-endian) Buffers or as numbers.
 */
export function deriveSessionKeys(
  appKey: Bytes,
  appNonce: Bytes | number,
  netId: Bytes | number,
  devNonce: Bytes | number,
): { nwkSKey: Buffer; appSKey: Buffer } {
  const be = (v: Bytes | number, len: number, what: string): Buffer => {
    if (typeof v !== 'number') return bytes(v, len, what);
    const b = Buffer.alloc(len);
    b.writeUIntBE(v, 0, len);
    return b;
  };
  const tail = Buffer.concat([rev(be(appNonce, 3, 'AppNonce')), rev(be(netId, 3, 'NetID')), rev(be(devNonce, 2, 'DevNonce'))]);
  const key = bytes(appKey, 16, 'AppKey');
  const derive = (t: number) => aesEncryptBlocks(key, Buffer.concat([Buffer.from([t]), tail, Buffer.alloc(7)]));
  return { nwkSKey: derive(0x01), appSKey: derive(0x02) };
}
