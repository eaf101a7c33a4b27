// The network server proper: which device an uplink is from (DevAddr, then the MIC with
// its session key — checked before anything else is believed), frame counters, payload
// decoding, storage, and the Class A answers: ACKs and queued downlinks only after the
// uplink's readings are committed, MAC answers, JoinAccepts after the session is on disk.
import { randomBytes, randomUUID } from 'node:crypto';
import loraPacketModule from 'lora-packet';
import type { DriverContext } from '../../gateway/contract/driver.js';
import type { Reading } from '../../gateway/contract/types.js';
import { CodecError, type PayloadCodec } from './codecs/sandbox.js';
import { cryptFrmPayload, dataMic, joinMic, sessionKeys } from './crypto.js';
import { chooseWindow, DownlinkQueues, MAX_CONFIRMED_ATTEMPTS, txPacket, type QueuedDownlink } from './downlinks.js';
import {
  buildDataDown,
  buildJoinAccept,
  DEVICE_TIME,
  deviceTimeAns,
  fullFCnt,
  LINK_CHECK,
  linkCheckAns,
  parseMacCommands,
} from './frames.js';
import type { GatewayState } from './gateways.js';
import type { RxPacket, TxPacket } from './gwmp.js';
import type { LorawanMetrics } from './metrics.js';
import { decodedReadings, radioReadings } from './readings.js';
import type { Region } from './regions.js';
import type { LorawanDriverConfig, LorawanProfile } from './schema.js';
import type { Session, SessionStore } from './sessions.js';

// lora-packet is CommonJS whose module.exports is the API object; its types call it `default`.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;
type LoraPacket = ReturnType<typeof loraPacket.fromWire>;

export interface LoraDevice {
  id: string;
  devEui: string;
  zone: string;
  profile: LorawanProfile;
  codec: PayloadCodec | null;
  appKey: Buffer | null;
  joinEui: string | null;
  /** Last uplink, for the API. */
  last: { at: number; fCnt: number; rssi: number; snr: number | null; gateways: number } | null;
}

/** One copy of an uplink as one gateway heard it. */
export interface Heard {
  gateway: GatewayState;
  rx: RxPacket;
  receivedAt: number;
}

export type Verified =
  | { kind: 'data'; device: LoraDevice; session: Session; fCnt: number; packet: LoraPacket; confirmed: boolean }
  | { kind: 'join'; device: LoraDevice; devNonce: number; wireNonce: Buffer };

/** Sends a PHYPayload through the best gateway that heard the uplink; resolves when handed to the socket. */
export type Transmit = (heard: readonly Heard[], txpk: TxPacket, onAck: (error: string) => void) => boolean;

const JOIN_ACCEPT_DELAY1_S = 5;
/** The largest PHYPayload a LoRa radio carries (the length field is one byte). */
const MAX_PHY_PAYLOAD = 255;
const MAX_FCNT = 0xffffffff;

export class Network {
  readonly queues: DownlinkQueues;
  /** Confirmed downlinks sent and waiting for the device's ACK, by device id. */
  private readonly awaitingAck = new Map<string, QueuedDownlink>();
  /** Counters of uplinks being committed, so a copy arriving meanwhile is not stored twice. */
  private readonly inflight = new Set<string>();

  constructor(
    private readonly cfg: LorawanDriverConfig,
    private readonly region: Region,
    private readonly devices: ReadonlyMap<string, LoraDevice>,
    private readonly sessions: SessionStore,
    private readonly ctx: DriverContext<LorawanMetrics>,
    private readonly transmit: Transmit,
  ) {
    this.queues = new DownlinkQueues(cfg.maxQueuedDownlinks);
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Who sent this frame, proven by its MIC; or the reason it is refused. */
  verify(phy: Buffer): Verified | { reject: string } {
    // lora-packet does not check lengths: any frame we take has at least MHDR, FHDR (7) and MIC (4).
    if (phy.length < 12) return { reject: 'bad_frame' };
    if (phy.length > MAX_PHY_PAYLOAD) return { reject: 'oversize' };
    let p: LoraPacket;
    try {
      p = loraPacket.fromWire(phy);
    } catch {
      return { reject: 'bad_frame' };
    }
    const mtype = p.getMType();
    if (mtype === 'Join Request') return this.verifyJoin(p, phy);
    if (mtype !== 'Unconfirmed Data Up' && mtype !== 'Confirmed Data Up') return { reject: 'unexpected_mtype' };
    if (!p.DevAddr || !p.FCnt) return { reject: 'bad_frame' };
    const devAddr = p.DevAddr.readUInt32BE(0);
    const candidates = this.sessions.byDevAddr(devAddr);
    if (candidates.length === 0) return { reject: 'unknown_devaddr' };
    const low16 = p.FCnt.readUInt16BE(0);
    const msg = phy.subarray(0, phy.length - 4);
    const mic = phy.subarray(phy.length - 4);
    for (const session of candidates) {
      const fCnt = fullFCnt(session.fCntUp, low16);
      if (!dataMic(session.nwkSKey, 'up', devAddr, fCnt, msg).equals(mic)) continue;
      const device = this.devices.get(session.devEui);
      if (!device) continue;
      return { kind: 'data', device, session, fCnt, packet: p, confirmed: mtype === 'Confirmed Data Up' };
    }
    return { reject: 'bad_mic' };
  }

  private verifyJoin(p: LoraPacket, phy: Buffer): Verified | { reject: string } {
    if (phy.length !== 23 || !p.DevEUI || !p.AppEUI) return { reject: 'bad_frame' };
    const device = this.devices.get(p.DevEUI.toString('hex'));
    if (!device?.appKey) return { reject: 'unknown_deveui' };
    if (!joinMic(device.appKey, phy.subarray(0, 19)).equals(phy.subarray(19))) return { reject: 'bad_mic' };
    if (device.joinEui && device.joinEui !== p.AppEUI.toString('hex')) return { reject: 'join_eui_mismatch' };
    const wireNonce = Buffer.from(phy.subarray(17, 19));
    return { kind: 'join', device, devNonce: wireNonce.readUInt16LE(0), wireNonce };
  }

  /** Handles a verified uplink with every copy heard within the dedup window. */
  async handle(v: Verified, heard: readonly Heard[]): Promise<void> {
    if (v.kind === 'join') return this.join(v, heard);
    return this.data(v, heard);
  }

  private async data(v: Extract<Verified, { kind: 'data' }>, heard: readonly Heard[]): Promise<void> {
    const { device, session, fCnt, packet: p } = v;
    const m = this.ctx.metrics;
    const key = `${device.devEui}:${fCnt}`;
    if (fCnt > MAX_FCNT) return this.ctx.reject('fcnt_exhausted');
    if (fCnt <= session.fCntUp || this.inflight.has(key)) {
      // The same counter again: a device retransmitting a confirmed uplink whose ACK it
      // missed. It is stored already (or being stored): acknowledge again, store nothing.
      if (fCnt === session.fCntUp && v.confirmed) {
        m.lorawanUplinks.inc({ result: 'retransmission' });
        this.answer(v, heard, Buffer.alloc(0));
        return;
      }
      if (this.inflight.has(key)) return void m.lorawanUplinks.inc({ result: 'duplicate' });
      return this.ctx.reject('replayed_fcnt');
    }
    if (session.fCntUp >= 0 && fCnt - session.fCntUp > this.cfg.maxFCntGap) return this.ctx.reject('fcnt_gap');

    const fPort = p.getFPort();
    const ack = p.getFCtrlACK() === true;
    const best = bestCopy(heard);
    const now = Date.now();
    let macIn: Buffer = p.FOpts ?? Buffer.alloc(0);
    const readings: Reading[] = radioReadings(device.id, now, fCnt, best.rx, heard, this.region);
    if (fPort === 0) {
      macIn = Buffer.concat([macIn, cryptPayload(session.nwkSKey, session.devAddr, fCnt, p)]);
    } else if (fPort !== null && p.FRMPayload && p.FRMPayload.length > 0) {
      const bytes = cryptPayload(session.appSKey, session.devAddr, fCnt, p);
      readings.push(...this.decode(device, bytes, fPort, now));
    }
    const mac = this.macAnswers(macIn, best, heard.length, now);

    this.inflight.add(key);
    try {
      await this.ctx.ingest(readings, { waitForSpace: true });
    } catch {
      return; // refused by the store (counted by the context): no ACK, the device will retransmit
    } finally {
      this.inflight.delete(key);
    }
    // Committed: only now may the device hear an ACK.
    if (fCnt > session.fCntUp) session.fCntUp = fCnt;
    this.sessions.touch();
    m.lorawanUplinks.inc({ result: 'stored' });
    for (const h of heard) h.gateway.uplinks++;
    device.last = { at: now, fCnt, rssi: best.rx.rssi, snr: best.rx.lsnr ?? null, gateways: heard.length };
    if (ack) this.acknowledged(device);
    this.answer(v, heard, mac);
  }

  /** Decoded readings, or none (counted) when the codec fails. */
  private decode(device: LoraDevice, bytes: Buffer, fPort: number, now: number): Reading[] {
    if (!device.codec) return decodedReadings(device.id, now, { payload: bytes.toString('hex'), fport: fPort });
    const t0 = performance.now();
    try {
      const r = device.codec.decodeUplink({ bytes, fPort, recvTime: new Date(now) });
      if (r.errors.length > 0) {
        this.ctx.reject('codec_errors');
        this.ctx.log.warn({ device: device.id, codec: device.codec.name, errors: r.errors.slice(0, 3) }, 'codec reported errors');
      }
      return decodedReadings(device.id, now, r.data);
    } catch (err) {
      const reason = err instanceof CodecError ? err.reason : 'threw';
      this.ctx.reject(`codec_${reason}`);
      this.ctx.log.warn({ device: device.id, err: (err as Error).message }, 'codec failed: payload kept as hex');
      return decodedReadings(device.id, now, { payload: bytes.toString('hex'), fport: fPort });
    } finally {
      this.ctx.metrics.lorawanCodecSeconds.observe((performance.now() - t0) / 1000);
    }
  }

  private macAnswers(macIn: Buffer, best: Heard, gateways: number, now: number): Buffer {
    if (macIn.length === 0) return Buffer.alloc(0);
    const { commands, unknown } = parseMacCommands(macIn);
    if (unknown !== null) this.ctx.reject('mac_unknown');
    const out: Buffer[] = [];
    for (const c of commands) {
      if (c.cid === LINK_CHECK) out.push(linkCheckAns(best.rx.lsnr ?? 0, best.rx.datr, gateways));
      else if (c.cid === DEVICE_TIME) out.push(deviceTimeAns(now));
    }
    return Buffer.concat(out);
  }

  /** The device set ACK: the confirmed downlink we sent it is delivered. */
  private acknowledged(device: LoraDevice): void {
    const d = this.awaitingAck.get(device.id);
    if (!d) return;
    this.awaitingAck.delete(device.id);
    this.queues.done(device.id, d.id);
    this.event('lorawan.downlink_acked', device, { downlink: d.id, fPort: d.fPort, attempts: d.attempts });
  }

  /** The Class A answer to a committed uplink: ACK, MAC answers and the next queued downlink, if any. */
  private answer(v: Extract<Verified, { kind: 'data' }>, heard: readonly Heard[], mac: Buffer): void {
    const { device, session } = v;
    const now = Date.now();
    const next = this.queues.peek(device.id, now, (d) =>
      this.event('lorawan.downlink_failed', device, { downlink: d.id, reason: 'expired' }),
    );
    if (!v.confirmed && mac.length === 0 && !next) return;
    const best = bestCopy(heard);
    const dr = this.region.uplinkDr(best.rx.datr) ?? 0;
    const win = chooseWindow(
      this.region,
      { tmst: best.rx.tmst, freq: best.rx.freq, dr, receivedAt: best.receivedAt },
      device.profile.rx1DelayS,
      device.profile.rx1DrOffset,
      now,
    );
    if (!win) return void this.ctx.reject('downlink_too_late');
    const room = this.region.maxPayload(win.at.datr) - mac.length;
    const send = next && next.bytes.length <= room ? next : undefined;
    const fCnt = session.fCntDown++;
    this.sessions.touch();
    const phy = buildDataDown({
      devAddr: session.devAddr,
      fCnt,
      confirmed: send?.confirmed ?? false,
      ack: v.confirmed,
      fPending: this.queues.size(device.id) > (send ? 1 : 0),
      fOpts: mac.subarray(0, 15),
      ...(send ? { fPort: send.fPort, payload: send.bytes } : {}),
      nwkSKey: session.nwkSKey,
      appSKey: session.appSKey,
    });
    const kind = send ? 'data' : v.confirmed ? 'ack' : 'mac';
    const sent = this.transmit(heard, txPacket(win.tmst, win.at, phy), (error) => {
      if (!send) return;
      if (error !== 'NONE') return; // not on air: it stays queued for the next uplink
      send.attempts++;
      this.event('lorawan.downlink_sent', device, {
        downlink: send.id,
        fPort: send.fPort,
        confirmed: send.confirmed,
        window: win.window,
        fCnt,
      });
      if (!send.confirmed) this.queues.done(device.id, send.id);
      else if (send.attempts >= MAX_CONFIRMED_ATTEMPTS) {
        this.queues.done(device.id, send.id);
        this.event('lorawan.downlink_failed', device, { downlink: send.id, reason: 'not_acknowledged', attempts: send.attempts });
      } else this.awaitingAck.set(device.id, send);
    });
    if (sent) this.ctx.metrics.lorawanDownlinks.inc({ kind, window: win.window });
  }

  private async join(v: Extract<Verified, { kind: 'join' }>, heard: readonly Heard[]): Promise<void> {
    const { device } = v;
    const m = this.ctx.metrics;
    if (this.sessions.nonceUsed(device.devEui, v.devNonce)) {
      m.lorawanJoins.inc({ result: 'devnonce_replay' });
      return this.ctx.reject('devnonce_replay');
    }
    const appKey = device.appKey!;
    const netId = Buffer.from(this.cfg.netId, 'hex').reverse(); // wire order
    const appNonce = randomBytes(3);
    const devAddr = this.newDevAddr();
    const keys = sessionKeys(appKey, appNonce, netId, v.wireNonce);
    this.sessions.useNonce(device.devEui, v.devNonce);
    this.sessions.put({ devEui: device.devEui, devAddr, ...keys, fCntUp: -1, fCntDown: 0, activation: 'otaa', joinedAt: Date.now() });
    try {
      await this.sessions.persist(); // on disk before the device can hear it
    } catch (err: unknown) {
      m.lorawanJoins.inc({ result: 'persist_failed' });
      this.ctx.log.error({ err, device: device.id }, 'could not save the LoRaWAN session: no JoinAccept sent');
      return;
    }
    const best = bestCopy(heard);
    const dr = this.region.uplinkDr(best.rx.datr) ?? 0;
    const win = chooseWindow(
      this.region,
      { tmst: best.rx.tmst, freq: best.rx.freq, dr, receivedAt: best.receivedAt },
      JOIN_ACCEPT_DELAY1_S,
      0,
      Date.now(),
    );
    if (!win) {
      m.lorawanJoins.inc({ result: 'too_late' });
      return this.ctx.reject('downlink_too_late');
    }
    const phy = buildJoinAccept(appKey, {
      appNonce,
      netId,
      devAddr,
      rx1DrOffset: device.profile.rx1DrOffset,
      rx2Dr: this.region.rx2Dr,
      rxDelayS: device.profile.rx1DelayS,
      cfList: this.region.cfList(),
    });
    if (this.transmit(heard, txPacket(win.tmst, win.at, phy), () => undefined)) {
      m.lorawanJoins.inc({ result: 'accepted' });
      m.lorawanDownlinks.inc({ kind: 'join_accept', window: win.window });
      this.event('lorawan.joined', device, { devEui: device.devEui, devAddr: devAddr.toString(16).padStart(8, '0'), window: win.window });
    } else m.lorawanJoins.inc({ result: 'no_gateway' });
  }

  /** A random DevAddr in this NetID's range (type 0: NwkID = the NetID's low 6 bits) not in use. */
  private newDevAddr(): number {
    const nwkId = parseInt(this.cfg.netId, 16) & 0x3f;
    for (;;) {
      const addr = ((nwkId << 25) | (randomBytes(4).readUInt32BE(0) & 0x01ffffff)) >>> 0;
      if (!this.sessions.addrInUse(addr)) return addr;
    }
  }

  /** Queues a downlink for the device's next receive window; returns its id and queue position. */
  queueDownlink(
    device: LoraDevice,
    d: { fPort: number; bytes: Buffer; confirmed?: boolean; ttlS?: number; requestedBy: string },
  ): { id: string; position: number } {
    if (d.fPort < 1 || d.fPort > 223) throw new Error(`fPort ${d.fPort}: application ports are 1-223`);
    if (d.bytes.length > 242) throw new Error(`${d.bytes.length}-byte downlink (242 at most)`);
    const id = randomUUID();
    const position = this.queues.enqueue(device.id, {
      id,
      fPort: d.fPort,
      bytes: d.bytes,
      confirmed: d.confirmed ?? device.profile.confirmedDownlinks,
      expiresAt: Date.now() + (d.ttlS ?? this.cfg.downlinkTtlS) * 1000,
      requestedBy: d.requestedBy,
      attempts: 0,
    });
    return { id, position };
  }

  private event(type: string, device: LoraDevice, data: Record<string, unknown>): void {
    void this.ctx.emitEvent(type, { device: device.id, ...data }, device.id).catch(() => this.ctx.reject('store_error'));
  }
}

/** The copy with the best SNR (then RSSI): its gateway answers. */
export function bestCopy(heard: readonly Heard[]): Heard {
  let best = heard[0];
  for (const h of heard) {
    const a = h.rx.lsnr ?? -99;
    const b = best.rx.lsnr ?? -99;
    if (a > b || (a === b && h.rx.rssi > best.rx.rssi)) best = h;
  }
  return best;
}

function cryptPayload(key: Buffer, devAddr: number, fCnt: number, p: LoraPacket): Buffer {
  return cryptFrmPayload(key, 'up', devAddr, fCnt, p.FRMPayload ?? Buffer.alloc(0));
}
