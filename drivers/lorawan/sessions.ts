// Device sessions (DevAddr, session keys, frame counters) and the DevNonces each device
// has used, kept in <dataDir>/lorawan/sessions.json (0600: it holds session keys). A
// join is written (fsync, rename) before its JoinAccept leaves, so a restart never
// forgets a session a device believes in; concurrent joins share one write. Frame
// counters are written lazily: the uplink counter is also stored as a reading with every
// uplink (in the same commit), and on load the downlink counter skips ahead, because a
// device ignores downlinks whose counter it has seen.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Session {
  devEui: string;
  devAddr: number;
  nwkSKey: Buffer;
  appSKey: Buffer;
  /** Last accepted uplink counter (32-bit), -1 before the first. */
  fCntUp: number;
  /** Next downlink counter to use. */
  fCntDown: number;
  activation: 'otaa' | 'abp';
  joinedAt: number | null;
}

/** DevNonces remembered per device (LoRaWAN 1.0.2 nonces are random: the oldest are forgotten past this). */
export const MAX_DEV_NONCES = 2048;
/** How far the downlink counter jumps after a restart (it is written lazily). */
export const FCNT_DOWN_SKIP = 64;

interface FileShape {
  version: 1;
  sessions: {
    devEui: string;
    devAddr: string;
    nwkSKey: string;
    appSKey: string;
    fCntUp: number;
    fCntDown: number;
    activation?: 'otaa' | 'abp';
    joinedAt: number | null;
  }[];
  devNonces: Record<string, number[]>;
}

export class SessionStore {
  private readonly byEui = new Map<string, Session>();
  private readonly byAddr = new Map<number, Session[]>();
  private readonly nonces = new Map<string, number[]>();
  private dirty = false;
  private writing: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  private constructor(private readonly file: string) {}

  /** Loads the file (missing: empty); downlink counters skip ahead by FCNT_DOWN_SKIP. */
  static load(file: string): SessionStore {
    const s = new SessionStore(file);
    if (!existsSync(file)) return s;
    const data = JSON.parse(readFileSync(file, 'utf8')) as FileShape;
    for (const r of data.sessions ?? []) {
      s.put({
        devEui: r.devEui,
        devAddr: parseInt(r.devAddr, 16) >>> 0,
        nwkSKey: Buffer.from(r.nwkSKey, 'hex'),
        appSKey: Buffer.from(r.appSKey, 'hex'),
        fCntUp: r.fCntUp,
        fCntDown: r.fCntDown + FCNT_DOWN_SKIP,
        activation: r.activation ?? 'otaa',
        joinedAt: r.joinedAt,
      });
    }
    for (const [eui, list] of Object.entries(data.devNonces ?? {})) s.nonces.set(eui, list);
    s.dirty = false;
    return s;
  }

  get(devEui: string): Session | undefined {
    return this.byEui.get(devEui);
  }

  /** Sessions using a DevAddr (more than one only if an ABP address collides). */
  byDevAddr(devAddr: number): readonly Session[] {
    return this.byAddr.get(devAddr) ?? [];
  }

  get size(): number {
    return this.byEui.size;
  }

  all(): IterableIterator<Session> {
    return this.byEui.values();
  }

  addrInUse(devAddr: number): boolean {
    return this.byAddr.has(devAddr);
  }

  /** Adds or replaces a device's session (ABP ones too: their counters must survive a restart). */
  put(s: Session): void {
    const old = this.byEui.get(s.devEui);
    if (old) this.unindex(old);
    this.byEui.set(s.devEui, s);
    const list = this.byAddr.get(s.devAddr);
    if (list) list.push(s);
    else this.byAddr.set(s.devAddr, [s]);
    this.dirty = true;
  }

  /** True when this DevNonce was used by the device before (a replayed JoinRequest). */
  nonceUsed(devEui: string, nonce: number): boolean {
    return this.nonces.get(devEui)?.includes(nonce) ?? false;
  }

  useNonce(devEui: string, nonce: number): void {
    const list = this.nonces.get(devEui) ?? [];
    list.push(nonce);
    if (list.length > MAX_DEV_NONCES) list.splice(0, list.length - MAX_DEV_NONCES);
    this.nonces.set(devEui, list);
    this.dirty = true;
  }

  /** A counter changed: written with the next persist(). */
  touch(): void {
    this.dirty = true;
  }

  /** Writes the file if anything changed; calls made while a write runs share the next one. */
  persist(): Promise<void> {
    if (!this.writing) return this.startWrite();
    this.next ??= this.writing.catch(() => undefined).then(() => this.startWrite());
    return this.next;
  }

  private startWrite(): Promise<void> {
    this.next = null;
    if (!this.dirty) return Promise.resolve();
    // setImmediate: joins arriving in the same turn are written together.
    const w = new Promise<void>((resolve, reject) =>
      setImmediate(() => {
        try {
          this.writeNow();
          resolve();
        } catch (err) {
          this.dirty = true;
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      }),
    ).finally(() => {
      if (this.writing === w) this.writing = null;
    });
    this.writing = w;
    return w;
  }

  private writeNow(): void {
    this.dirty = false;
    const data: FileShape = {
      version: 1,
      sessions: [...this.byEui.values()].map((s) => ({
        devEui: s.devEui,
        devAddr: s.devAddr.toString(16).padStart(8, '0'),
        nwkSKey: s.nwkSKey.toString('hex'),
        appSKey: s.appSKey.toString('hex'),
        fCntUp: s.fCntUp,
        fCntDown: s.fCntDown,
        activation: s.activation,
        joinedAt: s.joinedAt,
      })),
      devNonces: Object.fromEntries(this.nonces),
    };
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(data));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }

  private unindex(s: Session): void {
    const list = this.byAddr.get(s.devAddr);
    if (!list) return;
    const rest = list.filter((x) => x !== s);
    if (rest.length > 0) this.byAddr.set(s.devAddr, rest);
    else this.byAddr.delete(s.devAddr);
  }
}
