// A Semtech UDP packet forwarder (GWMP, packet_forwarder's PROTOCOL.TXT) as a test peer: it
// plays a gateway against the network server under test over real UDP on 127.0.0.1.
//
// Datagram layout, every message:
//   byte 0      protocol version (2; 1 for the original forwarder)
//   bytes 1-2   random token; an ack repeats its request's token
//   byte 3      identifier: PUSH_DATA 0x00, PUSH_ACK 0x01, PULL_DATA 0x02, PULL_RESP 0x03,
//               PULL_ACK 0x04, TX_ACK 0x05
//   bytes 4-11  gateway EUI, only in PUSH_DATA, PULL_DATA and TX_ACK (gateway -> server)
//   rest        JSON: PUSH_DATA {"rxpk":[...]} / {"stat":{...}}, PULL_RESP {"txpk":{...}},
//               TX_ACK {"txpk_ack":{"error":"NONE"|...}}
// Version 1 differs: PULL_RESP carries no token (zeros) and there is no TX_ACK.
//
// Like the real forwarder it uses two CONNECTED sockets: "up" for PUSH_DATA (acks come back
// there) and "down" for PULL_DATA, whose address the server must use for PULL_RESP; the
// kernel drops datagrams from any other address, as it does for a real gateway.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { randomInt } from 'node:crypto';

export const GWMP = { PUSH_DATA: 0, PUSH_ACK: 1, PULL_DATA: 2, PULL_RESP: 3, PULL_ACK: 4, TX_ACK: 5 } as const;

export type TxAckError =
  'NONE' | 'TOO_LATE' | 'TOO_EARLY' | 'COLLISION_PACKET' | 'COLLISION_BEACON' | 'TX_FREQ' | 'TX_POWER' | 'GPS_UNLOCKED';

export interface RxMeta {
  tmst?: number;
  tmms?: number;
  time?: string;
  freq?: number;
  chan?: number;
  rfch?: number;
  /** CRC status: 1 ok, -1 bad, 0 none. */
  stat?: 1 | 0 | -1;
  datr?: string;
  codr?: string;
  rssi?: number;
  lsnr?: number;
}

/** PULL_RESP txpk fields (PROTOCOL.TXT §6); anything else the server sends is kept too. */
export interface Txpk {
  imme?: boolean;
  tmst?: number;
  tmms?: number;
  freq?: number;
  rfch?: number;
  powe?: number;
  modu?: string;
  datr?: string | number;
  codr?: string;
  ipol?: boolean;
  prea?: number;
  size?: number;
  data?: string;
  ncrc?: boolean;
  [key: string]: unknown;
}

export interface Downlink {
  txpk: Txpk;
  /** The PHYPayload, base64-decoded from txpk.data. */
  phy: Buffer;
  token: number;
  raw: Buffer;
  from: { address: string; port: number };
  at: number;
  /** What was answered in TX_ACK; null when none was sent (version 1, or txAckError null). */
  txAck: TxAckError | null;
  /** Where the txpk would not do for a LoRaWAN downlink on a real concentrator; [] is good. */
  problems: string[];
}

export interface Ack {
  token: number;
  raw: Buffer;
  at: number;
}

export interface Stray {
  raw: Buffer;
  via: 'up' | 'down';
  reason: string;
}

export interface ForwarderPeerOptions {
  /** 16 hex digits, printed order (sent as is, big-endian, as the real forwarder does). */
  gatewayEui: string;
  /** Loopback address of the server; portDown defaults to port (one socket on the server). */
  server: { host: string; port: number; portDown?: number };
  version?: 1 | 2;
  /** How long pullData/pushUplink/pushStat wait for their ack (default 2000 ms). */
  ackTimeoutMs?: number;
  /** TX_ACK error to answer PULL_RESP with (default 'NONE'); null sends no TX_ACK. */
  txAckError?: TxAckError | null;
  /** Send PULL_DATA every this many ms, as the real forwarder does (default: never). */
  keepaliveMs?: number;
}

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const NAMES = ['PUSH_DATA', 'PUSH_ACK', 'PULL_DATA', 'PULL_RESP', 'PULL_ACK', 'TX_ACK'];

async function connectLoopback(host: string, port: number): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () =>
      s.connect(port, host, () => {
        s.off('error', reject);
        resolve();
      }),
    );
  });
  return s;
}

/** "2014-01-12 08:59:28 GMT", the stat time format of PROTOCOL.TXT. */
const statTime = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')} GMT`;

export class ForwarderPeer {
  readonly version: 1 | 2;
  readonly gatewayEui: string;
  /** Every PULL_RESP received, in order. */
  readonly downlinks: Downlink[] = [];
  /** Datagrams that matched nothing: unknown token, wrong version, bad JSON, short. */
  readonly strays: Stray[] = [];
  /** Socket errors (e.g. ICMP port unreachable while the server is down); kept, not thrown. */
  readonly errors: Error[] = [];
  txAckError: TxAckError | null;
  private readonly eui: Buffer;
  private readonly pending = new Map<string, Pending<Ack>>();
  private readonly waiters: Pending<Downlink>[] = [];
  private readonly unread: Downlink[] = [];
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    private readonly up: Socket,
    private readonly down: Socket,
    private readonly opts: ForwarderPeerOptions,
  ) {
    this.version = opts.version ?? 2;
    this.gatewayEui = opts.gatewayEui.toLowerCase();
    this.eui = Buffer.from(this.gatewayEui, 'hex');
    this.txAckError = opts.txAckError === undefined ? 'NONE' : opts.txAckError;
    for (const [via, s] of [['up', up] as const, ['down', down] as const]) {
      s.on('message', (m, r) => this.onMessage(via, m, r));
      s.on('error', (e) => this.errors.push(e));
    }
  }

  static async start(opts: ForwarderPeerOptions): Promise<ForwarderPeer> {
    if (!/^[0-9a-fA-F]{16}$/.test(opts.gatewayEui)) throw new RangeError(`gatewayEui must be 16 hex digits: ${opts.gatewayEui}`);
    const up = await connectLoopback(opts.server.host, opts.server.port);
    const down = await connectLoopback(opts.server.host, opts.server.portDown ?? opts.server.port).catch((e: Error) => {
      up.close();
      throw e;
    });
    const peer = new ForwarderPeer(up, down, opts);
    if (opts.keepaliveMs) {
      peer.keepalive = setInterval(() => void peer.pullData().catch(() => undefined), opts.keepaliveMs);
      peer.keepalive.unref();
    }
    return peer;
  }

  /** The peer's own sockets, e.g. to check where the server sent PULL_RESP. */
  addresses(): { up: AddressInfo; down: AddressInfo } {
    return { up: this.up.address(), down: this.down.address() };
  }

  /** PULL_DATA on the down socket; resolves on the PULL_ACK with the same token. */
  pullData(): Promise<Ack> {
    return this.request('down', GWMP.PULL_DATA, null, GWMP.PULL_ACK);
  }

  /** PUSH_DATA {"rxpk":[one frame]}; resolves on the PUSH_ACK with the same token. */
  pushUplink(phy: Buffer, meta: RxMeta = {}): Promise<Ack> {
    const now = new Date();
    const rxpk = {
      time: meta.time ?? now.toISOString(),
      tmst: meta.tmst ?? Math.floor(performance.now() * 1000) >>> 0,
      ...(meta.tmms !== undefined ? { tmms: meta.tmms } : {}),
      chan: meta.chan ?? 0,
      rfch: meta.rfch ?? 0,
      freq: meta.freq ?? 868.1,
      stat: meta.stat ?? 1,
      modu: 'LORA',
      datr: meta.datr ?? 'SF7BW125',
      codr: meta.codr ?? '4/5',
      rssi: meta.rssi ?? -42,
      lsnr: meta.lsnr ?? 9.5,
      size: phy.length,
      data: phy.toString('base64'),
    };
    return this.pushData({ rxpk: [rxpk] });
  }

  /** PUSH_DATA {"stat":{...}} with plausible defaults for the fields not given. */
  pushStat(stat: Record<string, unknown> = {}): Promise<Ack> {
    const base = { time: statTime(new Date()), rxnb: 0, rxok: 0, rxfw: 0, ackr: 100.0, dwnb: 0, txnb: 0 };
    return this.pushData({ stat: { ...base, ...stat } });
  }

  /** PUSH_DATA with any JSON body (for rxpk the helpers above do not build). */
  pushData(body: object): Promise<Ack> {
    return this.request('up', GWMP.PUSH_DATA, Buffer.from(JSON.stringify(body)), GWMP.PUSH_ACK);
  }

  /** Send bytes as they are (malformed datagrams); nothing is awaited but the send. */
  async sendRaw(buf: Buffer, via: 'up' | 'down' = 'up'): Promise<void> {
    if (this.closed) throw new Error('ForwarderPeer closed');
    await this.send(via, buf);
  }

  /** The oldest PULL_RESP not yet taken; waits up to timeoutMs for one. */
  nextDownlink(timeoutMs = 2000): Promise<Downlink> {
    const ready = this.unread.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.reject(new Error('ForwarderPeer closed'));
    return new Promise<Downlink>((resolve, reject) => {
      const w: Pending<Downlink> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`no PULL_RESP within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    const err = new Error('ForwarderPeer closed');
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    await Promise.all([this.up, this.down].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private header(token: number, ident: number, withEui: boolean): Buffer {
    const h = Buffer.from([this.version, token >> 8, token & 0xff, ident]);
    return withEui ? Buffer.concat([h, this.eui]) : h;
  }

  private send(via: 'up' | 'down', buf: Buffer): Promise<void> {
    const sock = via === 'up' ? this.up : this.down;
    return new Promise((resolve, reject) => sock.send(buf, (e) => (e ? reject(e) : resolve())));
  }

  private request(via: 'up' | 'down', ident: number, body: Buffer | null, ackIdent: number): Promise<Ack> {
    if (this.closed) return Promise.reject(new Error('ForwarderPeer closed'));
    let token: number;
    do token = randomInt(0x10000);
    while (this.pending.has(`${ackIdent}:${token}`));
    const key = `${ackIdent}:${token}`;
    const ms = this.opts.ackTimeoutMs ?? 2000;
    const msg = body ? Buffer.concat([this.header(token, ident, true), body]) : this.header(token, ident, true);
    return new Promise<Ack>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`no ${NAMES[ackIdent]} for token ${token.toString(16).padStart(4, '0')} within ${ms} ms`));
      }, ms);
      this.pending.set(key, { resolve, reject, timer });
      this.send(via, msg).catch((e: Error) => {
        clearTimeout(timer);
        this.pending.delete(key);
        reject(e);
      });
    });
  }

  private onMessage(via: 'up' | 'down', raw: Buffer, from: RemoteInfo): void {
    const stray = (reason: string) => void this.strays.push({ raw, via, reason });
    if (raw.length < 4) return stray('shorter than the 4-byte header');
    if (raw[0] !== this.version) return stray(`version ${raw[0]}, expected ${this.version}`);
    const token = raw.readUInt16BE(1);
    const ident = raw[3];
    if (ident === GWMP.PUSH_ACK || ident === GWMP.PULL_ACK) {
      if (raw.length !== 4) return stray(`${NAMES[ident]} of ${raw.length} bytes, expected 4`);
      const want = ident === GWMP.PUSH_ACK ? 'up' : 'down';
      if (via !== want) return stray(`${NAMES[ident]} on the ${via} socket`);
      const p = this.pending.get(`${ident}:${token}`);
      if (!p) return stray(`${NAMES[ident]} with unknown token ${token.toString(16)}`);
      this.pending.delete(`${ident}:${token}`);
      clearTimeout(p.timer);
      return p.resolve({ token, raw, at: Date.now() });
    }
    if (ident !== GWMP.PULL_RESP) return stray(`identifier ${ident} is not for a gateway`);
    if (via !== 'down') return stray('PULL_RESP on the up socket');
    let txpk: Txpk;
    try {
      const body = JSON.parse(raw.subarray(4).toString('utf8')) as { txpk?: unknown };
      if (typeof body?.txpk !== 'object' || body.txpk === null) return stray('PULL_RESP without a txpk object');
      txpk = body.txpk as Txpk;
    } catch {
      return stray('PULL_RESP with invalid JSON');
    }
    const phy = Buffer.from(typeof txpk.data === 'string' ? txpk.data : '', 'base64');
    const txAck = this.version === 2 ? this.txAckError : null;
    const d: Downlink = {
      txpk,
      phy,
      token,
      raw,
      from: { address: from.address, port: from.port },
      at: Date.now(),
      txAck,
      problems: check(txpk, phy),
    };
    this.downlinks.push(d);
    if (txAck !== null) {
      const ack = Buffer.concat([this.header(token, GWMP.TX_ACK, true), Buffer.from(JSON.stringify({ txpk_ack: { error: txAck } }))]);
      this.send('down', ack).catch((e: Error) => this.errors.push(e));
    }
    const w = this.waiters.shift();
    if (w) {
      clearTimeout(w.timer);
      w.resolve(d);
    } else this.unread.push(d);
  }
}

/** What a concentrator would refuse, or a LoRaWAN device would not hear. */
function check(t: Txpk, phy: Buffer): string[] {
  const p: string[] = [];
  if (typeof t.data !== 'string' || phy.length === 0) p.push('no data');
  if (t.size !== phy.length) p.push(`size ${t.size} but data is ${phy.length} bytes`);
  if (t.imme !== true && typeof t.tmst !== 'number' && typeof t.tmms !== 'number') p.push('neither imme, tmst nor tmms');
  if (typeof t.freq !== 'number') p.push('no freq');
  if (typeof t.rfch !== 'number') p.push('no rfch');
  if (typeof t.powe !== 'number') p.push('no powe');
  if (t.modu !== 'LORA') p.push(`modu ${String(t.modu)}, expected LORA`);
  if (typeof t.datr !== 'string' || !/^SF(?:[5-9]|1[0-2])BW(?:125|250|500)$/.test(t.datr)) p.push(`datr ${String(t.datr)}`);
  if (typeof t.codr !== 'string') p.push('no codr');
  if (t.ipol !== true) p.push('ipol is not true (LoRaWAN downlinks invert the IQ)');
  return p;
}
