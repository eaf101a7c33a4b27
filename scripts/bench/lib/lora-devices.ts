// The LoRaWAN bench's radio side, as a child process (so the gateway's process measures only
// itself): G packet forwarders (one UDP socket each, GWMP v2) and D OTAA devices that join
// through them; then `run` sends N uplinks, each heard by 1-3 forwarders, with at most
// `window` PUSH_ACKs outstanding (UDP has no back-pressure: past the socket buffer datagrams
// would just vanish); `bare` times lora-packet parse + MIC + decrypt on the same frames.
import { createCipheriv, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import loraPacketModule from 'lora-packet';
import { cryptFrmPayload, dataMic, joinMic, sessionKeys } from '../../../drivers/lorawan/crypto.js';
import { runChild, say } from './child-main.js';
import { LOOPBACK } from './procs.js';

const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

export interface LoraDevicesArgs {
  port: number;
  gateways: string[];
  devices: { devEui: string; appKey: string }[];
  uplinks: number;
  window: number;
}

interface Session {
  devAddr: number;
  nwkSKey: Buffer;
  appSKey: Buffer;
  fCnt: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as LoraDevicesArgs;
const header = (token: number, id: number, eui: Buffer) => Buffer.concat([Buffer.from([2, token >> 8, token & 0xff, id]), eui]);

class Forwarder {
  readonly eui: Buffer;
  private token = 0;
  lost = 0;
  private readonly acks = new Map<number, () => void>();
  /** Devices waiting for their JoinAccept: each tries the downlink and takes it if its key fits. */
  readonly waiting: ((phy: Buffer) => boolean)[] = [];
  constructor(
    eui: string,
    readonly socket: Socket,
  ) {
    this.eui = Buffer.from(eui, 'hex');
    socket.on('message', (m) => {
      const token = m.readUInt16BE(1);
      if (m[3] === 0x03) {
        socket.send(Buffer.concat([header(token, 0x05, this.eui), Buffer.from('{"txpk_ack":{"error":"NONE"}}')]));
        const txpk = (JSON.parse(m.subarray(4).toString()) as { txpk: { data: string } }).txpk;
        const phy = Buffer.from(txpk.data, 'base64');
        const i = this.waiting.findIndex((w) => w(phy));
        if (i >= 0) this.waiting.splice(i, 1);
      } else this.acks.get(token)?.();
    });
  }
  /** Sends PUSH_DATA (or PULL_DATA) and resolves on its ack. */
  request(id: 0 | 2, body?: object): Promise<void> {
    const token = (this.token = (this.token + 1) & 0xffff);
    const buf = body ? Buffer.concat([header(token, id, this.eui), Buffer.from(JSON.stringify(body))]) : header(token, id, this.eui);
    return new Promise((resolve) => {
      // A forwarder does not resend PUSH_DATA: a datagram without an ack within 1 s is lost.
      const timer = setTimeout(() => {
        this.acks.delete(token);
        this.lost++;
        resolve();
      }, 1000);
      this.acks.set(token, () => {
        clearTimeout(timer);
        this.acks.delete(token);
        resolve();
      });
      this.socket.send(buf);
    });
  }
  push(phy: Buffer, tmst: number, rssi: number): Promise<void> {
    const rxpk = {
      tmst,
      freq: 868.1,
      chan: 0,
      rfch: 0,
      stat: 1,
      modu: 'LORA',
      datr: 'SF7BW125',
      codr: '4/5',
      rssi,
      lsnr: 7,
      size: phy.length,
    };
    return this.request(0, { rxpk: [{ ...rxpk, data: phy.toString('base64') }] });
  }
}

async function forwarder(eui: string): Promise<Forwarder> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, LOOPBACK, () => s.connect(args.port, LOOPBACK, resolve)));
  const f = new Forwarder(eui, s);
  await f.request(2);
  return f;
}

/** Joins one device through `via`; the JoinAccept is opened with AES encrypt (the network decrypted it) and matched by its MIC. */
function join(via: Forwarder, d: { devEui: string; appKey: string }): Promise<Session> {
  const appKey = Buffer.from(d.appKey, 'hex');
  const nonce = randomBytes(2);
  const msg = Buffer.concat([Buffer.from([0x00]), Buffer.alloc(8), Buffer.from(d.devEui, 'hex').reverse(), nonce]);
  const phy = Buffer.concat([msg, joinMic(appKey, msg)]);
  return new Promise((resolve) => {
    via.waiting.push((ja) => {
      const c = createCipheriv('aes-128-ecb', appKey, null).setAutoPadding(false);
      const plain = Buffer.concat([c.update(ja.subarray(1)), c.final()]);
      const body = plain.subarray(0, plain.length - 4);
      if (!joinMic(appKey, Buffer.concat([ja.subarray(0, 1), body])).equals(plain.subarray(plain.length - 4))) return false;
      resolve({ devAddr: plain.readUInt32LE(6), ...sessionKeys(appKey, plain.subarray(0, 3), plain.subarray(3, 6), nonce), fCnt: 0 });
      return true;
    });
    void via.push(phy, 0, -60);
  });
}

/** A data uplink with an LPP payload of 10-50 bytes (temperature, humidity, analog inputs). */
function uplink(s: Session, i: number): Buffer {
  const parts = [Buffer.from([1, 0x67, 0, 200 + (i % 50)]), Buffer.from([2, 0x68, 90 + (i % 20)])];
  for (let ch = 3; parts.reduce((n, p) => n + p.length, 0) < 10 + (i % 41); ch++) parts.push(Buffer.from([ch, 0x02, 0x01, i & 0xff]));
  const fCnt = s.fCnt++;
  const head = Buffer.alloc(9);
  head[0] = 0x40;
  head.writeUInt32LE(s.devAddr, 1);
  head.writeUInt16LE(fCnt & 0xffff, 6);
  head[8] = 1; // FPort
  const body = Buffer.concat([head, cryptFrmPayload(s.appSKey, 'up', s.devAddr, fCnt, Buffer.concat(parts))]);
  return Buffer.concat([body, dataMic(s.nwkSKey, 'up', s.devAddr, fCnt, body)]);
}

let fwd: Forwarder[] = [];
let frames: { s: Session; phy: Buffer; i: number }[] = [];

async function send(): Promise<void> {
  const started = performance.now();
  let next = 0;
  let copies = 0;
  const worker = async () => {
    while (next < frames.length) {
      const { phy, i } = frames[next++];
      const heardBy = 1 + (i % 3);
      copies += heardBy;
      await Promise.all(Array.from({ length: heardBy }, (_, k) => fwd[(i + k) % fwd.length].push(phy, i * 1000, -50 - k * 10)));
    }
  };
  await Promise.all(Array.from({ length: args.window }, worker));
  say('sent', { ms: Math.round(performance.now() - started), datagrams: copies, unacknowledged: fwd.reduce((n, f) => n + f.lost, 0) });
}

function bare(): void {
  const t = performance.now();
  for (const { s, phy } of frames) {
    const p = loraPacket.fromWire(phy);
    if (!loraPacket.verifyMIC(p, s.nwkSKey)) throw new Error('bare loop: MIC');
    loraPacket.decrypt(p, s.appSKey, s.nwkSKey);
  }
  say('bare', { perSec: Math.round(frames.length / ((performance.now() - t) / 1000)) });
}

runChild(
  async () => {
    fwd = await Promise.all(args.gateways.map(forwarder));
    const t0 = performance.now();
    const sessions: Session[] = [];
    // Joins in batches: each waits out the network's dedup window before its JoinAccept.
    for (let i = 0; i < args.devices.length; i += 200) {
      const batch = args.devices.slice(i, i + 200).map((d, k) => join(fwd[(i + k) % fwd.length], d));
      sessions.push(...(await Promise.all(batch)));
    }
    say('joined', Math.round(performance.now() - t0));
    frames = Array.from({ length: args.uplinks }, (_, i) => {
      const s = sessions[i % sessions.length];
      return { s, phy: uplink(s, i), i };
    });
    say('ready');
    return { close: async () => fwd.forEach((f) => f.socket.close()) };
  },
  { run: () => void send(), bare },
);
