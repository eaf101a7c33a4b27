// The Semtech UDP packet forwarder protocol (GWMP, packet_forwarder's PROTOCOL.TXT),
// versions 1 and 2. Every datagram starts with: version (1 byte), a random token
// (2 bytes, echoed in the answer), an identifier (1 byte); PUSH_DATA, PULL_DATA and
// TX_ACK then carry the gateway EUI (8 bytes); PUSH_DATA, PULL_RESP and TX_ACK (v2)
// end in a JSON object.

export const PUSH_DATA = 0x00;
export const PUSH_ACK = 0x01;
export const PULL_DATA = 0x02;
export const PULL_RESP = 0x03;
export const PULL_ACK = 0x04;
export const TX_ACK = 0x05;

/** One received packet as the forwarder reports it (`rxpk`). */
export interface RxPacket {
  /** Concentrator microsecond counter at the end of the preamble (wraps at 2^32). */
  tmst: number;
  freq: number;
  chan?: number;
  rfch?: number;
  /** 1: CRC ok, -1: CRC bad, 0: no CRC. */
  stat: number;
  modu: string;
  datr: string;
  codr?: string;
  rssi: number;
  lsnr?: number;
  data: Buffer;
  time?: string;
}

/** Forwarder statistics (`stat`), sent every stat_interval. */
export interface GatewayStat {
  rxnb?: number;
  rxok?: number;
  rxfw?: number;
  ackr?: number;
  dwnb?: number;
  txnb?: number;
  time?: string;
  lati?: number;
  long?: number;
  alti?: number;
}

/** A packet to transmit (`txpk`). */
export interface TxPacket {
  imme?: boolean;
  tmst?: number;
  freq: number;
  rfch: number;
  powe: number;
  modu: 'LORA';
  datr: string;
  codr: string;
  ipol: boolean;
  size: number;
  data: string;
}

export type Datagram =
  | { kind: 'push'; version: number; token: number; eui: string; rxpk: RxPacket[]; stat: GatewayStat | null; badRxpk: number }
  | { kind: 'pull'; version: number; token: number; eui: string }
  | { kind: 'txack'; version: number; token: number; eui: string; error: string };

export class GwmpError extends Error {
  constructor(
    readonly reason: 'truncated' | 'bad_version' | 'bad_identifier' | 'bad_json',
    message: string,
  ) {
    super(message);
    this.name = 'GwmpError';
  }
}

const HEADER = 4;
const EUI_END = HEADER + 8;

/** Parses a datagram from a packet forwarder; throws GwmpError naming what is wrong. */
export function parseDatagram(buf: Buffer): Datagram {
  if (buf.length < HEADER) throw new GwmpError('truncated', `${buf.length}-byte datagram, shorter than the 4-byte header`);
  const version = buf[0];
  if (version !== 1 && version !== 2) throw new GwmpError('bad_version', `protocol version ${version} (1 or 2 expected)`);
  const token = buf.readUInt16BE(1);
  const id = buf[3];
  if (id !== PUSH_DATA && id !== PULL_DATA && id !== TX_ACK) {
    throw new GwmpError('bad_identifier', `identifier 0x${id.toString(16)} is not one a forwarder sends`);
  }
  if (buf.length < EUI_END) throw new GwmpError('truncated', `${buf.length}-byte datagram has no gateway EUI`);
  const eui = buf.subarray(HEADER, EUI_END).toString('hex');
  if (id === PULL_DATA) return { kind: 'pull', version, token, eui };
  if (id === TX_ACK) {
    // v1 TX_ACK has no body; v2 may carry {"txpk_ack":{"error":"..."}} (no body or "NONE": sent).
    const body = buf.length > EUI_END ? json(buf, EUI_END) : null;
    const ack = obj(obj(body).txpk_ack);
    return { kind: 'txack', version, token, eui, error: typeof ack.error === 'string' ? ack.error : 'NONE' };
  }
  const body = obj(json(buf, EUI_END));
  const rxpk: RxPacket[] = [];
  let badRxpk = 0;
  for (const p of Array.isArray(body.rxpk) ? (body.rxpk as unknown[]) : []) {
    const r = rxPacket(p);
    if (r) rxpk.push(r);
    else badRxpk++;
  }
  return { kind: 'push', version, token, eui, rxpk, stat: body.stat ? gatewayStat(body.stat) : null, badRxpk };
}

/** PUSH_ACK / PULL_ACK: the header alone. */
export function ackDatagram(version: number, token: number, id: typeof PUSH_ACK | typeof PULL_ACK): Buffer {
  return header(version, token, id);
}

function header(version: number, token: number, id: number): Buffer {
  const out = Buffer.alloc(HEADER);
  out[0] = version;
  out.writeUInt16BE(token, 1);
  out[3] = id;
  return out;
}

/** PULL_RESP carrying one txpk (v1 forwarders ignore the token; v2 echo it in TX_ACK). */
export function pullResp(version: number, token: number, txpk: TxPacket): Buffer {
  return Buffer.concat([header(version, token, PULL_RESP), Buffer.from(JSON.stringify({ txpk }))]);
}

function json(buf: Buffer, at: number): unknown {
  try {
    return JSON.parse(buf.subarray(at).toString('utf8')) as unknown;
  } catch (err) {
    throw new GwmpError('bad_json', `JSON body does not parse: ${(err as Error).message}`);
  }
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function rxPacket(v: unknown): RxPacket | null {
  const p = obj(v);
  const tmst = num(p.tmst);
  const freq = num(p.freq);
  const rssi = num(p.rssi);
  if (tmst === undefined || freq === undefined || rssi === undefined || typeof p.data !== 'string' || typeof p.datr !== 'string')
    return null;
  const data = Buffer.from(p.data, 'base64');
  if (data.length === 0) return null;
  return {
    tmst,
    freq,
    chan: num(p.chan),
    rfch: num(p.rfch),
    stat: num(p.stat) ?? 1,
    modu: typeof p.modu === 'string' ? p.modu : 'LORA',
    datr: p.datr,
    codr: typeof p.codr === 'string' ? p.codr : undefined,
    rssi,
    lsnr: num(p.lsnr),
    data,
    time: typeof p.time === 'string' ? p.time : undefined,
  };
}

function gatewayStat(v: unknown): GatewayStat {
  const s = obj(v);
  const out: GatewayStat = {};
  for (const k of ['rxnb', 'rxok', 'rxfw', 'ackr', 'dwnb', 'txnb', 'lati', 'long', 'alti'] as const) {
    const n = num(s[k]);
    if (n !== undefined) out[k] = n;
  }
  if (typeof s.time === 'string') out.time = s.time;
  return out;
}
