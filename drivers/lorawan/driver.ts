// The LoRaWAN driver: one UDP socket speaking GWMP with the site's packet forwarders.
// Datagrams are acknowledged at once (PUSH_ACK only says "datagram received"; LoRaWAN's
// own ACK waits for the commit, in network.ts). Copies of one uplink heard by several
// gateways within dedupWindowMs are handled once, with every gateway's radio data.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { Command, CommandResult } from '../../gateway/contract/types.js';
import type { SiteView } from '../../gateway/contract/descriptor.js';
import { lppCodec } from './codecs/lpp.js';
import { loadCodec, type PayloadCodec } from './codecs/sandbox.js';
import { GatewayRegistry, type GatewayState, type GatewayView } from './gateways.js';
import { ackDatagram, GwmpError, parseDatagram, pullResp, PULL_ACK, PUSH_ACK, type Datagram, type TxPacket } from './gwmp.js';
import { resolveKey } from './keys.js';
import type { LorawanMetrics } from './metrics.js';
import { Network, type Heard, type LoraDevice, type Verified } from './network.js';
import { FCNT_POINT } from './readings.js';
import { REGIONS } from './regions.js';
import type { LorawanDeviceConfig, LorawanDriverConfig } from './schema.js';
import { SessionStore } from './sessions.js';

export interface LorawanHealth extends DriverHealth {
  port: number | null;
  gatewaysOnline: number;
  devices: number;
  joined: number;
}

export interface LorawanDeviceView {
  id: string;
  devEui: string;
  zone: string;
  joined: boolean;
  devAddr: string | null;
  fCntUp: number | null;
  lastUplink: string | null;
  rssi: number | null;
  snr: number | null;
  gateways: number | null;
  queuedDownlinks: number;
}

interface Pending {
  verified: Verified;
  heard: Heard[];
}

const SWEEP_MS = 5_000;
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
/** Uplinks verified and waiting out the dedup window or their commit; past this, new ones are refused (`overload`). */
export const MAX_PENDING_UPLINKS = 20_000;
const SESSION_FLUSH_MS = 10_000;

export class LorawanDriver implements Driver<LorawanHealth> {
  readonly name = 'lorawan';
  private ctx: DriverContext<LorawanMetrics> | null = null;
  private socket: Socket | null = null;
  private network: Network | null = null;
  private sessions: SessionStore | null = null;
  private readonly gateways: GatewayRegistry;
  private readonly devices = new Map<string, LoraDevice>();
  private readonly byId = new Map<string, LoraDevice>();
  private readonly pending = new Map<string, Pending>();
  private readonly txWaiting = new Map<number, { eui: string; onAck: (error: string) => void }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly codecs: PayloadCodec[] = [];

  constructor(
    private readonly cfg: LorawanDriverConfig,
    private readonly site: SiteView<LorawanDeviceConfig>,
  ) {
    this.gateways = new GatewayRegistry(cfg.gateways, cfg.allowUnknownGateways, cfg.gatewayOfflineAfterS * 1000);
  }

  async start(ctx: DriverContext): Promise<void> {
    this.ctx = ctx as DriverContext<LorawanMetrics>;
    const sessions = SessionStore.load(join(ctx.site.dataDir, 'lorawan', 'sessions.json'));
    this.sessions = sessions;
    await this.loadDevices(sessions);
    // The uplink counter committed with the last stored uplink wins over the lazily written file.
    for (const [id, fCnt] of await ctx.recall(FCNT_POINT)) {
      const d = this.byId.get(id);
      const s = d ? sessions.get(d.devEui) : undefined;
      if (s && fCnt > s.fCntUp) s.fCntUp = fCnt;
    }
    this.network = new Network(this.cfg, REGIONS[this.cfg.region], this.devices, sessions, this.ctx, (heard, txpk, onAck) =>
      this.transmit(heard, txpk, onAck),
    );
    // A large receive buffer: many forwarders may send at once while a commit holds the loop.
    const socket = createSocket({ type: this.cfg.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
    socket.on('message', (msg, rinfo) => this.onDatagram(msg, rinfo));
    socket.on('error', (err) => this.ctx?.fail(err));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.cfg.port, this.cfg.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.timers.push(setInterval(() => this.sweep(), SWEEP_MS).unref());
    this.timers.push(
      setInterval(
        () => void sessions.persist().catch((err: Error) => ctx.log.error({ err }, 'could not save LoRaWAN sessions')),
        SESSION_FLUSH_MS,
      ).unref(),
    );
    ctx.log.info(
      { port: this.port, region: this.cfg.region, devices: this.devices.size, sessions: sessions.size },
      'LoRaWAN network server listening',
    );
  }

  private async loadDevices(sessions: SessionStore): Promise<void> {
    const codecs = new Map<string, PayloadCodec | null>();
    for (const [name, p] of Object.entries(this.cfg.profiles)) {
      if (p.codec === 'none') codecs.set(name, null);
      else if (p.codec === 'lpp') codecs.set(name, lppCodec);
      else {
        const c = await loadCodec(p.codec, { timeoutMs: this.cfg.codecTimeoutMs, memoryBytes: this.cfg.codecMemoryMB * 1024 * 1024 });
        this.codecs.push(c);
        codecs.set(name, c);
      }
    }
    for (const d of this.site.devices) {
      const c = d.config;
      const at = `devices[${d.index}].lorawan`;
      const devEui = c.devEui.toLowerCase();
      const profile = this.cfg.profiles[c.profile];
      if (!profile) throw new Error(`${at}.profile: no profile "${c.profile}"`);
      const dev: LoraDevice = {
        id: d.id,
        devEui,
        zone: d.zone,
        profile,
        codec: codecs.get(c.profile) ?? null,
        appKey: c.activation === 'otaa' && c.appKey ? resolveKey(c.appKey, `${at}.appKey`) : null,
        joinEui: c.joinEui?.toLowerCase() ?? null,
        last: null,
      };
      this.devices.set(devEui, dev);
      this.byId.set(d.id, dev);
      if (c.activation === 'abp' && c.devAddr && c.nwkSKey && c.appSKey) {
        const kept = sessions.get(devEui);
        sessions.put({
          devEui,
          devAddr: parseInt(c.devAddr, 16) >>> 0,
          nwkSKey: resolveKey(c.nwkSKey, `${at}.nwkSKey`),
          appSKey: resolveKey(c.appSKey, `${at}.appSKey`),
          fCntUp: kept?.fCntUp ?? -1,
          fCntDown: kept?.fCntDown ?? 0,
          activation: 'abp',
          joinedAt: null,
        });
      }
    }
  }

  private onDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const ctx = this.ctx!;
    const now = Date.now();
    let d: Datagram;
    try {
      d = parseDatagram(msg);
    } catch (err) {
      const reason = err instanceof GwmpError ? `gwmp_${err.reason}` : 'gwmp_error';
      ctx.reject(reason);
      this.ctx?.warnLimited(
        `${rinfo.address}:${reason}`,
        { from: `${rinfo.address}:${rinfo.port}`, err: (err as Error).message },
        'bad GWMP datagram',
      );
      return;
    }
    ctx.metrics.lorawanDatagrams.inc({ type: d.kind });
    const gw = this.gateways.admit(d.eui);
    if (!gw) {
      ctx.reject('unknown_gateway');
      this.ctx?.warnLimited(
        `gw:${d.eui}`,
        { gateway: d.eui, from: rinfo.address },
        'datagram from a gateway not in drivers.lorawan.gateways: ignored',
      );
      return;
    }
    if (this.gateways.heard(gw, now)) this.gatewayEvent(gw, 'lorawan.gateway_online');
    if (d.kind === 'pull') {
      gw.pull = { address: rinfo.address, port: rinfo.port, version: d.version, at: now };
      this.socket?.send(ackDatagram(d.version, d.token, PULL_ACK), rinfo.port, rinfo.address);
      return;
    }
    if (d.kind === 'txack') return this.onTxAck(d.token, d.error);
    this.socket?.send(ackDatagram(d.version, d.token, PUSH_ACK), rinfo.port, rinfo.address);
    if (d.badRxpk > 0) ctx.reject('bad_rxpk', d.badRxpk);
    if (d.stat) this.onStat(gw, d.stat, now);
    for (const rx of d.rxpk) {
      if (rx.stat !== 1) {
        ctx.reject('crc_error');
        continue;
      }
      this.onUplink({ gateway: gw, rx, receivedAt: now });
    }
  }

  private onUplink(h: Heard): void {
    const key = h.rx.data.toString('base64');
    const group = this.pending.get(key);
    if (group) {
      group.heard.push(h);
      this.ctx!.metrics.lorawanUplinks.inc({ result: 'copy' });
      return;
    }
    if (this.pending.size + this.network!.inflightCount >= MAX_PENDING_UPLINKS) {
      this.ctx!.reject('overload');
      return;
    }
    const v = this.network!.verify(h.rx.data);
    if ('reject' in v) {
      this.ctx!.reject(v.reject);
      return;
    }
    const p: Pending = { verified: v, heard: [h] };
    this.pending.set(key, p);
    setTimeout(() => {
      this.pending.delete(key);
      this.network!.handle(p.verified, p.heard).catch((err: Error) => this.ctx?.log.error({ err }, 'LoRaWAN uplink handling failed'));
    }, this.cfg.dedupWindowMs);
  }

  private onStat(gw: GatewayState, stat: NonNullable<GatewayState['stat']>, now: number): void {
    gw.stat = stat;
    const readings = (['rxnb', 'rxok', 'rxfw', 'ackr', 'txnb', 'dwnb'] as const).flatMap((k) =>
      stat[k] === undefined ? [] : [{ ts: now, device: gw.id, point: `gateway.${k}`, value: stat[k] }],
    );
    if (readings.length > 0) void this.ctx!.offer(readings);
  }

  private transmit(heard: readonly Heard[], txpk: TxPacket, onAck: (error: string) => void): boolean {
    // The best copy's gateway if it pulls, else any that heard the uplink and pulls.
    const ordered = [...heard].sort((a, b) => (b.rx.lsnr ?? -99) - (a.rx.lsnr ?? -99) || b.rx.rssi - a.rx.rssi);
    const via = ordered.find((h) => h.gateway.pull !== null);
    if (!via || !this.socket) {
      this.ctx!.reject('no_downlink_gateway');
      return false;
    }
    const pull = via.gateway.pull!;
    const token = randomInt(0, 0x10000);
    this.txWaiting.set(token, { eui: via.gateway.eui, onAck });
    setTimeout(() => this.txWaiting.delete(token), 30_000).unref();
    const withRf = { ...txpk, rfch: via.rx.rfch ?? 0 };
    this.socket.send(pullResp(pull.version, token, withRf), pull.port, pull.address);
    via.gateway.downlinks++;
    // A version 1 forwarder sends no TX_ACK: take the datagram as sent.
    if (pull.version === 1) {
      this.txWaiting.delete(token);
      onAck('NONE');
    }
    return true;
  }

  private onTxAck(token: number, error: string): void {
    this.ctx!.metrics.lorawanTxAcks.inc({ error });
    const w = this.txWaiting.get(token);
    if (!w) return;
    this.txWaiting.delete(token);
    if (error !== 'NONE')
      this.ctx?.warnLimited(`txack:${w.eui}:${error}`, { gateway: w.eui, error }, 'forwarder could not send a downlink');
    w.onAck(error);
  }

  private sweep(): void {
    for (const gw of this.gateways.sweep(Date.now())) this.gatewayEvent(gw, 'lorawan.gateway_offline');
    this.ctx?.metrics.lorawanGatewaysOnline.set(this.gateways.onlineCount);
  }

  private gatewayEvent(gw: GatewayState, type: string): void {
    const ctx = this.ctx!;
    ctx.devices.setOnline(gw.id, type.endsWith('online'), this.name);
    void ctx.emitEvent(type, { gateway: gw.eui, id: gw.id, lastSeen: gw.lastSeen }, gw.id).catch(() => ctx.reject('store_error'));
    ctx.metrics.lorawanGatewaysOnline.set(this.gateways.onlineCount);
  }

  owns(device: string): boolean {
    return this.byId.has(device);
  }

  async write(cmd: Command): Promise<CommandResult> {
    const device = this.byId.get(cmd.device);
    if (!device || !this.network) return { ok: false, detail: `"${cmd.device}" is not a LoRaWAN device` };
    const { downlinkFromCommand } = await import('./commands.js');
    const d = downlinkFromCommand(cmd, device);
    if ('error' in d) return { ok: false, detail: d.error };
    try {
      const q = this.network.queueDownlink(device, { ...d, requestedBy: cmd.requestedBy });
      return { ok: true, detail: `downlink ${q.id} queued (position ${q.position}): sent in the device's next receive window` };
    } catch (err) {
      return { ok: false, detail: (err as Error).message };
    }
  }

  get port(): number | null {
    const a = this.socket?.address();
    return a ? a.port : null;
  }

  health(): LorawanHealth {
    const joined = [...this.devices.values()].filter((d) => this.sessions?.get(d.devEui)).length;
    const gws = this.gateways.list();
    const seen = gws.map((g) => `${g.id} ${g.online ? 'online' : 'offline'}${g.lastSeen ? ` (last ${g.lastSeen})` : ''}`).join(', ');
    return {
      ok: this.socket !== null,
      detail: `udp ${this.port ?? '-'}, ${this.cfg.region}; gateways ${this.gateways.onlineCount}/${gws.length} online${seen ? `: ${seen}` : ''}; devices ${joined}/${this.devices.size} with a session`,
      port: this.port,
      gatewaysOnline: this.gateways.onlineCount,
      devices: this.devices.size,
      joined,
    };
  }

  gatewayList(): GatewayView[] {
    return this.gateways.list();
  }

  deviceList(): LorawanDeviceView[] {
    return [...this.devices.values()].map((d) => {
      const s = this.sessions?.get(d.devEui);
      return {
        id: d.id,
        devEui: d.devEui,
        zone: d.zone,
        joined: s !== undefined,
        devAddr: s ? s.devAddr.toString(16).padStart(8, '0') : null,
        fCntUp: s && s.fCntUp >= 0 ? s.fCntUp : null,
        lastUplink: d.last ? new Date(d.last.at).toISOString() : null,
        rssi: d.last?.rssi ?? null,
        snr: d.last?.snr ?? null,
        gateways: d.last?.gateways ?? null,
        queuedDownlinks: this.network?.queues.size(d.id) ?? 0,
      };
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    await this.sessions?.persist().catch((err: Error) => this.ctx?.log.error({ err }, 'could not save LoRaWAN sessions'));
    for (const c of this.codecs) c.close();
    this.codecs.length = 0;
  }
}
