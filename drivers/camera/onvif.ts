// A typed promise wrapper over the `onvif` package's Cam: device information, media
// profiles, stream and snapshot URIs, PTZ presets, and motion/tamper events through a
// pull-point subscription. Every error names the camera (host:port) and says what went
// wrong in words an installer can act on. See drivers/camera/README.md, "ONVIF".
import { Agent } from 'node:http';
import onvif from 'onvif';
import { backoffDelay } from '../../gateway/kernel/backoff.js';
import { escXml, list, normaliseEvent, num, obj, str, toMs, unescXml, xmlText, type OnvifEvent } from './onvif-parse.js';

type Cam = InstanceType<typeof onvif.Cam>;
type Callback = (err: Error | null, data?: unknown, xml?: string) => void;

export interface OnvifTarget {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

export interface OnvifDeviceInfo {
  manufacturer: string;
  model: string;
  firmwareVersion: string;
  serialNumber: string;
  hardwareId: string;
}

export interface OnvifProfile {
  token: string;
  name: string;
  /** null when the profile has no video encoder (audio or metadata only). */
  encoding: string | null;
  width: number | null;
  height: number | null;
  fps: number | null;
}

export interface OnvifPreset {
  token: string;
  name: string;
}

export type OnvifErrorKind = 'auth' | 'unreachable' | 'timeout' | 'not-onvif' | 'unsupported' | 'fault';

export class OnvifError extends Error {
  override readonly name = 'OnvifError';
  constructor(
    readonly camera: string,
    readonly kind: OnvifErrorKind,
    detail: string,
  ) {
    super(`ONVIF ${camera}: ${detail}`);
  }
}

export interface OnvifCamera {
  readonly host: string;
  readonly port: number;
  readonly hasPtz: boolean;
  readonly hasEvents: boolean;
  deviceInformation(): Promise<OnvifDeviceInfo>;
  /** The media profiles read at connect time. */
  profiles(): Promise<OnvifProfile[]>;
  /** RTSP URI (RTP over the RTSP TCP connection) of a profile; default: the first video profile. */
  streamUri(profileToken?: string): Promise<string>;
  snapshotUri(profileToken?: string): Promise<string>;
  presets(profileToken?: string): Promise<OnvifPreset[]>;
  gotoPreset(presetToken: string, profileToken?: string): Promise<void>;
  /** Subscribes (pull point) and calls onEvent per event; resolves to a stop function that never rejects. */
  events(onEvent: (e: OnvifEvent) => void, opts?: { onError?: (err: Error) => void }): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const NET_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EPIPE',
  'EADDRNOTAVAIL',
]);
const AUTH_RE = /not ?authori[sz]ed|unauthori[sz]ed|Digest authentication (failed|headers not found)/i;
// A pull may be held by the camera for up to the PT1M the library asks for; it waits 80 s.
const PULL_GUARD_MS = 85_000;
const MAX_BACKOFF_MS = 30_000;

/** Connects (date/time, services or capabilities, profiles) and returns the camera. */
export async function connectOnvif(target: OnvifTarget, opts: { timeoutMs: number }): Promise<OnvifCamera> {
  const cam = new OnvifCameraImpl(target, opts.timeoutMs);
  try {
    await cam.connect();
  } catch (err) {
    await cam.close();
    throw err;
  }
  return cam;
}

class OnvifCameraImpl implements OnvifCamera {
  readonly host: string;
  readonly port: number;
  private readonly label: string;
  private readonly agent = new Agent();
  private readonly cam: Cam;
  private lastStatus = 0;
  private profileList: OnvifProfile[] = [];
  private subscription: PullPoint | null = null;

  constructor(
    target: OnvifTarget,
    private readonly timeoutMs: number,
  ) {
    this.host = target.host;
    this.port = target.port;
    this.label = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
    this.cam = new onvif.Cam({
      hostname: target.host,
      port: target.port,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      timeout: timeoutMs,
      agent: this.agent,
      autoconnect: false,
      // The address the installer gave wins over the XAddrs the camera reports (NAT, port forwards).
      preserveAddress: true,
    });
    this.cam.on('rawResponse', (_xml: string, status: number) => (this.lastStatus = status));
  }

  get hasPtz(): boolean {
    return Boolean(this.cam.uri?.ptz);
  }
  get hasEvents(): boolean {
    return Boolean(this.cam.uri?.events);
  }

  /** One library call as a promise: settles once (the library can call back twice) or times out. */
  call(action: string, fn: (cb: Callback) => void, guardMs = this.timeoutMs + 1000): Promise<{ data: unknown; xml: string }> {
    this.lastStatus = 0;
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => finish(new OnvifError(this.label, 'timeout', `no answer within ${this.timeoutMs} ms`)), guardMs);
      const finish = (err: Error | null, data?: unknown, xml?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err instanceof OnvifError ? err : this.explain(action, err, xml));
        else resolve({ data, xml: xml ?? '' });
      };
      try {
        fn((err, data, xml) => finish(err, data, xml));
      } catch (err) {
        finish(err as Error);
      }
    });
  }

  private explain(action: string, err: Error, xml?: string): OnvifError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (err.message === 'Network timeout' || code === 'ETIMEDOUT')
      return new OnvifError(this.label, 'timeout', `no answer within ${this.timeoutMs} ms`);
    if (NET_CODES.has(code)) return new OnvifError(this.label, 'unreachable', `unreachable: ${code}`);
    if (AUTH_RE.test(`${err.message} ${xml ?? ''}`) || this.lastStatus === 401) {
      return new OnvifError(this.label, 'auth', 'authentication failed (check username/password)');
    }
    if (err.message.startsWith('ONVIF SOAP Fault: ')) {
      const reason = err.message.slice('ONVIF SOAP Fault: '.length) || 'no reason given';
      return new OnvifError(this.label, 'fault', `${action} failed: ${reason}`);
    }
    if (err.message === 'Wrong ONVIF SOAP response' || code.startsWith('HPE_')) {
      const what = code.startsWith('HPE_') ? 'not HTTP' : `HTTP ${this.lastStatus}, no SOAP`;
      return new OnvifError(this.label, 'not-onvif', `not an ONVIF device (${what} in answer to ${action})`);
    }
    return new OnvifError(this.label, 'fault', `${action} failed: ${err.message}`);
  }

  async connect(): Promise<void> {
    const cam = this.cam;
    // The device's clock first: UsernameToken digests carry a timestamp in its time.
    await this.call('GetSystemDateAndTime', (cb) => cam.getSystemDateAndTime(cb));
    try {
      await this.call('GetServices', (cb) => cam.getServices(true, cb));
    } catch (err) {
      if (err instanceof OnvifError && (err.kind === 'timeout' || err.kind === 'unreachable')) throw err;
      // GetServices is optional before ONVIF 2.0 (and faults on many cameras).
      await this.call('GetCapabilities', (cb) => cam.getCapabilities(cb));
    }
    // Media1 answers the same on Profile S and T cameras; the library's Media2 path is newer and buggier.
    if (cam.uri?.media) cam.media2Support = false;
    if (!cam.uri?.media && !cam.uri?.media2)
      throw new OnvifError(this.label, 'unsupported', 'offers no media service (not a video device?)');
    const { data, xml } = await this.call('GetProfiles', (cb) => cam.getProfiles(cb));
    // Tokens from the raw XML: the library turns "1.10" into the number 1.1.
    const tokens = [...xml.matchAll(/<(?:[\w.-]+:)?Profiles\b[^>]*?\btoken="([^"]*)"/g)].map((m) => unescXml(m[1]));
    this.profileList = list(data).map((p, i) => {
      const vec = obj(obj(p).videoEncoderConfiguration);
      const res = obj(vec.resolution);
      return {
        token: tokens.length === list(data).length ? tokens[i] : str(obj(obj(p).$).token),
        name: str(obj(p).name),
        encoding: vec.encoding === undefined ? null : str(vec.encoding),
        width: num(res.width),
        height: num(res.height),
        fps: num(obj(vec.rateControl).frameRateLimit),
      };
    });
    if (this.profileList.length === 0) throw new OnvifError(this.label, 'unsupported', 'has no media profiles');
  }

  async deviceInformation(): Promise<OnvifDeviceInfo> {
    const { xml } = await this.call('GetDeviceInformation', (cb) => this.cam.getDeviceInformation(cb));
    // Read from the raw XML: the library turns firmware "2.10" into the number 2.1.
    const f = (n: string) => xmlText(xml, n) ?? '';
    return {
      manufacturer: f('Manufacturer'),
      model: f('Model'),
      firmwareVersion: f('FirmwareVersion'),
      serialNumber: f('SerialNumber'),
      hardwareId: f('HardwareId'),
    };
  }

  async profiles(): Promise<OnvifProfile[]> {
    return this.profileList.map((p) => ({ ...p }));
  }

  private profile(token?: string): string {
    if (token === undefined) return (this.profileList.find((p) => p.encoding !== null) ?? this.profileList[0]).token;
    if (this.profileList.some((p) => p.token === token)) return token;
    throw new OnvifError(this.label, 'unsupported', `no profile "${token}" (profiles: ${this.profileList.map((p) => p.token).join(', ')})`);
  }

  async streamUri(profileToken?: string): Promise<string> {
    const token = escXml(this.profile(profileToken));
    const { data } = await this.call('GetStreamUri', (cb) =>
      this.cam.getStreamUri({ protocol: 'RTSP', stream: 'RTP-Unicast', profileToken: token }, cb),
    );
    return this.uriOf('GetStreamUri', data);
  }

  async snapshotUri(profileToken?: string): Promise<string> {
    const token = escXml(this.profile(profileToken));
    const { data } = await this.call('GetSnapshotUri', (cb) => this.cam.getSnapshotUri({ profileToken: token }, cb));
    return this.uriOf('GetSnapshotUri', data);
  }

  private uriOf(action: string, data: unknown): string {
    const uri = obj(data).uri;
    if (typeof uri !== 'string' || !uri) throw new OnvifError(this.label, 'fault', `${action} answered without a URI`);
    return uri;
  }

  private requirePtz(): void {
    if (!this.hasPtz) throw new OnvifError(this.label, 'unsupported', 'no PTZ (the camera offers no PTZ service)');
  }

  async presets(profileToken?: string): Promise<OnvifPreset[]> {
    this.requirePtz();
    const token = escXml(this.profile(profileToken));
    const { xml } = await this.call('GetPresets', (cb) => this.cam.getPresets({ profileToken: token }, cb));
    // Parsed here: the library keys its answer by preset name (duplicates collide).
    return [...xml.matchAll(/<(?:[\w.-]+:)?Preset\b([^>]*?)(?:\/>|>([\s\S]*?)<\/(?:[\w.-]+:)?Preset>)/g)].map((m) => ({
      token: unescXml(/\btoken="([^"]*)"/.exec(m[1])?.[1] ?? ''),
      name: xmlText(m[2] ?? '', 'Name') ?? '',
    }));
  }

  async gotoPreset(presetToken: string, profileToken?: string): Promise<void> {
    this.requirePtz();
    const token = escXml(this.profile(profileToken));
    await this.call('GotoPreset', (cb) => this.cam.gotoPreset({ profileToken: token, preset: escXml(presetToken) }, cb));
  }

  async events(onEvent: (e: OnvifEvent) => void, opts: { onError?: (err: Error) => void } = {}): Promise<() => Promise<void>> {
    if (!this.hasEvents) throw new OnvifError(this.label, 'unsupported', 'no events (the camera offers no event service)');
    // The library keeps one subscription per Cam.
    if (this.subscription) throw new OnvifError(this.label, 'unsupported', 'already subscribed to events');
    const sub = new PullPoint(this, this.cam, onEvent, opts.onError);
    await sub.create();
    this.subscription = sub;
    sub.run();
    return async () => {
      if (this.subscription === sub) this.subscription = null;
      await sub.stop();
    };
  }

  async close(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = null;
    this.agent.destroy();
  }
}

/** The pull loop: PullMessages, renew before the subscription runs out, re-subscribe after errors. */
class PullPoint {
  private stopped = false;
  private readonly agent = new Agent();
  private wake: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly owner: OnvifCameraImpl,
    private readonly cam: Cam,
    private readonly onEvent: (e: OnvifEvent) => void,
    private readonly onError?: (err: Error) => void,
  ) {}

  async create(): Promise<void> {
    await this.owner.call('CreatePullPointSubscription', (cb) => this.cam.createPullPointSubscription(cb));
    // The library sends pulls to this parsed URL object with no agent of ours; giving it one
    // lets stop() cut a pull the camera is holding (up to a minute) instead of waiting it out.
    const address = obj(obj(obj(this.cam.events).subscription).subscriptionReference).address;
    if (address && typeof address === 'object') (address as { agent?: Agent }).agent = this.agent;
  }

  run(): void {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (backoff) await this.create();
        const { data } = await this.owner.call('PullMessages', (cb) => this.cam.pullMessages({ messageLimit: 50 }, cb), PULL_GUARD_MS);
        if (this.stopped) return;
        backoff = failures = 0;
        const res = obj(data);
        for (const m of list(res.notificationMessage)) {
          try {
            this.onEvent(normaliseEvent(m));
          } catch (err) {
            this.onError?.(err as Error); // a listener's bug must not cost the subscription
          }
        }
        const left = toMs(res.terminationTime) - toMs(res.currentTime);
        // The next pull may be held for a minute: renew before that could outlast the subscription.
        if (Number.isFinite(left) && left < 70_000) await this.owner.call('Renew', (cb) => this.cam.renew({}, cb)).catch(() => undefined);
      } catch (err) {
        if (this.stopped) return;
        this.onError?.(err as Error);
        backoff = backoffDelay(failures++, 1000, MAX_BACKOFF_MS);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff);
          this.wake = () => (clearTimeout(t), resolve());
        });
        this.wake = null;
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    // Cut a held pull, let the loop finish (it may be re-subscribing), then unsubscribe what is left.
    this.agent.destroy();
    await this.running;
    await this.owner.call('Unsubscribe', (cb) => this.cam.unsubscribe(cb, true)).catch(() => undefined);
    this.agent.destroy();
  }
}
