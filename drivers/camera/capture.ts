// RTSP capture for one camera. ffmpeg (spawned through fluent-ffmpeg) pulls the stream,
// decodes it and letterboxes it to the model input in C; here its stdout is cut into exact
// frames, each copied into a fresh SharedArrayBuffer so the detector pool can read it from
// worker threads without another copy. A watchdog restarts a stalled stream, and a dropped
// one is reconnected with jittered exponential backoff, never in a tight loop.
import { Writable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { LogLimiter, type Logger } from '../../gateway/kernel/log.js';
import type { CameraMetrics } from './metrics.js';
import { ffmpegPath, letterboxFilter, letterboxFor } from './letterbox.js';
import type { Frame, InputSpec, Letterbox } from '../../models/detector/types.js';
import { backoffDelay } from '../../gateway/kernel/backoff.js';
import { LEVEL_TAG, parseGraphInput, parseVideoStream, probeFfmpeg, redact, type FfmpegInfo } from './ffmpeg-output.js';

export type CaptureState = 'idle' | 'connecting' | 'streaming' | 'backoff' | 'stopped';
export type ReconnectReason = 'exit' | 'stall' | 'error';

export interface CaptureOptions {
  camera: string;
  url: string;
  spec: InputSpec;
  transport?: 'tcp' | 'udp';
  /** Frames per second delivered (ffmpeg's fps filter drops or repeats to this). */
  fps?: number;
  /** No frame for this long: ffmpeg is killed and restarted. Connecting (RTSP set-up, probe, waiting
   *  for a keyframe) gets at least CONNECT_GRACE_MS, or a long-GOP camera would never start. */
  stallSeconds?: number;
  /** Configured ffmpeg binary (drivers.camera.ffmpeg). */
  ffmpeg?: string;
  /** Reconnect delays: initialMs doubling per failed attempt up to maxMs, ±20 % jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  log: Logger;
  metrics: CameraMetrics;
  onFrame: (frame: Frame) => void;
  /** Called when frames start (true) or stop (false) flowing. */
  onState?: (up: boolean) => void;
}

export interface CaptureStatus {
  state: CaptureState;
  sourceWidth: number | null;
  sourceHeight: number | null;
  codec: string | null;
  fps: number;
  reconnects: number;
  lastError: string | null;
  /** The running ffmpeg's pid (null between processes). */
  pid: number | null;
}

const PLUS_MINUS_20 = { low: 0.8, high: 1.2 };

const FPS_WINDOW_MS = 5000;
const CONNECT_GRACE_MS = 10_000;

/** One ffmpeg process and the frame it is filling. */
interface Session {
  cmd: ffmpeg.FfmpegCommand;
  pid: number | null;
  startedAt: number;
  lastFrameAt: number;
  frames: number;
  killedBy: 'stall' | 'stop' | null;
  ended: boolean;
  exited: Promise<void>;
  markExited: () => void;
  letterbox: Letterbox | null;
  pastInput: boolean;
  codec: string | null;
  errorLine: string | null;
  warningLine: string | null;
  lastLine: string | null;
  buf: Uint8Array | null;
  filled: number;
  frameStartedAt: number;
}

export class RtspCapture {
  private readonly log: Logger;
  private readonly frameBytes: number;
  private readonly stallMs: number;
  private readonly connectMs: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private state: CaptureState = 'idle';
  private session: Session | null = null;
  private attempt = 0;
  private reconnects = 0;
  private seq = 0;
  private lastError: string | null = null;
  private source: { width: number; height: number; codec: string | null } | null = null;
  private recent: number[] = []; // frame times in the fps window
  private retryTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private readonly onFrameErrors = new LogLimiter(60_000);

  constructor(private readonly opts: CaptureOptions) {
    this.log = opts.log.child({ camera: opts.camera });
    this.frameBytes = opts.spec.width * opts.spec.height * 3;
    this.stallMs = (opts.stallSeconds ?? 10) * 1000;
    this.connectMs = Math.max(this.stallMs, CONNECT_GRACE_MS);
    this.initialMs = Math.max(100, opts.backoff?.initialMs ?? 1000); // never a tight loop
    this.maxMs = Math.max(this.initialMs, opts.backoff?.maxMs ?? 30_000);
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    this.stopping = null;
    this.attempt = 0;
    this.seq = 0;
    this.tickTimer = setInterval(() => this.tick(), Math.min(1000, Math.max(100, this.stallMs / 4)));
    void this.connect();
  }

  /** Kills ffmpeg (SIGTERM, SIGKILL after 2 s) and cancels any reconnect; resolves once it is gone. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.setState('stopped');
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.retryTimer = this.tickTimer = null;
    this.opts.metrics.cameraUp.set({ camera: this.opts.camera }, 0);
    this.opts.metrics.cameraFps.set({ camera: this.opts.camera }, 0);
    const s = this.session;
    this.stopping = s ? this.kill(s, 'stop') : Promise.resolve();
    return this.stopping;
  }

  status(): CaptureStatus {
    return {
      state: this.state,
      sourceWidth: this.source?.width ?? null,
      sourceHeight: this.source?.height ?? null,
      codec: this.source?.codec ?? null,
      fps: this.measuredFps(),
      reconnects: this.reconnects,
      lastError: this.lastError,
      pid: this.session?.pid ?? null,
    };
  }

  private live(s: Session): boolean {
    return this.session === s && this.state !== 'stopped';
  }

  private setState(state: CaptureState): void {
    const was = this.state === 'streaming';
    this.state = state;
    const up = state === 'streaming';
    this.opts.metrics.cameraUp.set({ camera: this.opts.camera }, up ? 1 : 0);
    if (up !== was) this.opts.onState?.(up);
  }

  private async connect(): Promise<void> {
    this.retryTimer = null;
    this.setState('connecting');
    this.log[this.attempt === 0 ? 'info' : 'debug']({ url: redact(this.opts.url), attempt: this.attempt }, 'camera connecting');
    let path: string;
    let info: FfmpegInfo;
    try {
      path = ffmpegPath(this.opts.ffmpeg);
      info = await probeFfmpeg(path);
    } catch (err) {
      if (this.state === 'connecting') this.fail('error', (err as Error).message);
      return;
    }
    if (this.state !== 'connecting') return; // stopped while probing
    this.spawn(path, info);
  }

  private spawn(path: string, info: FfmpegInfo): void {
    const { spec, url } = this.opts;
    const now = Date.now();
    let markExited = (): void => {};
    const exited = new Promise<void>((r) => (markExited = r));
    const cmd = ffmpeg(url, { stdoutLines: 50 }).setFfmpegPath(path);
    const s: Session = {
      cmd,
      pid: null,
      startedAt: now,
      lastFrameAt: 0,
      frames: 0,
      killedBy: null,
      ended: false,
      exited,
      markExited,
      letterbox: null,
      pastInput: false,
      codec: null,
      errorLine: null,
      warningLine: null,
      lastLine: null,
      buf: null,
      filled: 0,
      frameStartedAt: 0,
    };
    this.session = s;
    const timeoutUs = String(Math.round(this.connectMs * 1000));
    cmd
      .inputOptions([
        '-hide_banner',
        '-nostdin',
        '-nostats',
        '-loglevel',
        info.levelTags ? 'level+verbose' : 'verbose', // verbose: the filter graph's input size
        '-rtsp_transport',
        this.opts.transport ?? 'tcp',
        ...(info.timeoutOption ? [info.timeoutOption, timeoutUs] : []),
        // Probe 0.5 s, not 5 s: at 5 fps ffmpeg would wait the full 5 s for 20 frames. The size comes
        // from the SDP or the first SPS; if it is not known by then, the filter graph line still tells it.
        '-analyzeduration',
        '500000',
      ])
      .outputOptions(['-map', '0:v:0', '-an', '-vf', letterboxFilter(spec, this.opts.fps ?? 5), '-f', 'rawvideo'])
      .on('start', () => {
        const proc = (cmd as unknown as { ffmpegProc?: { pid?: number } }).ffmpegProc; // fluent-ffmpeg keeps the child here
        s.pid = proc?.pid ?? null;
        if (s.killedBy)
          cmd.kill('SIGKILL'); // stopped while fluent-ffmpeg was preparing
        else this.log.debug({ ffmpegPid: s.pid, ffmpeg: info.version }, 'camera ffmpeg started');
      })
      .on('stderr', (line: string) => this.onStderr(s, line))
      .on('error', (err: Error) => this.onEnd(s, err))
      .on('end', () => this.onEnd(s, null));
    // end:false — stdout ending must not close our sink, or fluent-ffmpeg reports "Output stream
    // closed" instead of ffmpeg's exit code.
    cmd.pipe(new Writable({ write: (chunk: Buffer, _enc, cb) => (this.take(s, chunk), cb()) }), { end: false });
  }

  private onStderr(s: Session, raw: string): void {
    const tag = LEVEL_TAG.exec(raw);
    const line = redact(tag ? raw.slice(tag[0].length) : raw).trim();
    if (!line) return;
    const level = tag?.[1];
    if (level === 'error' || level === 'fatal' || level === 'panic') s.errorLine = line;
    else if (level === 'warning' && !raw.startsWith('[swscaler')) s.warningLine = line; // swscaler: yuvj420p nag
    if (level !== 'verbose' && level !== 'debug') s.lastLine = line;
    if (line.startsWith('Output #')) s.pastInput = true; // later "Stream #0:0: Video: rawvideo, 640x640" is ours
    const stream = s.pastInput || s.letterbox ? null : parseVideoStream(line);
    const size = stream ?? parseGraphInput(raw);
    if (!size) return;
    if (stream) s.codec = stream.codec;
    if (s.letterbox?.srcWidth === size.width && s.letterbox.srcHeight === size.height) return;
    if (s.letterbox)
      this.log.warn({ from: [s.letterbox.srcWidth, s.letterbox.srcHeight], to: [size.width, size.height] }, 'camera source size changed');
    s.letterbox = Object.freeze(letterboxFor(size.width, size.height, this.opts.spec));
    this.source = { width: size.width, height: size.height, codec: s.codec };
  }

  /** Copies stdout into per-frame shared buffers: one copy per byte, no concatenation. */
  private take(s: Session, chunk: Buffer): void {
    if (!this.live(s)) return; // late output of a process being replaced, or after stop()
    const size = this.frameBytes;
    for (let pos = 0; pos < chunk.length;) {
      if (!s.buf) {
        s.buf = new Uint8Array(new SharedArrayBuffer(size)); // fresh each frame: the consumer may keep the last one
        s.filled = 0;
        s.frameStartedAt = performance.now();
      }
      const n = Math.min(size - s.filled, chunk.length - pos);
      s.buf.set(chunk.subarray(pos, pos + n), s.filled);
      s.filled += n;
      pos += n;
      if (s.filled === size) {
        const data = s.buf;
        s.buf = null;
        this.emit(s, data);
        if (!this.live(s)) return;
      }
    }
  }

  private emit(s: Session, data: Uint8Array): void {
    const { camera, spec, metrics } = this.opts;
    const now = Date.now();
    if (!s.letterbox) {
      metrics.cameraFramesDropped.inc({ camera, reason: 'unknown_source_size' });
      return;
    }
    s.lastFrameAt = now;
    if (s.frames++ === 0) {
      this.attempt = 0;
      this.lastError = null;
      this.setState('streaming');
      this.log.info({ width: s.letterbox.srcWidth, height: s.letterbox.srcHeight, codec: s.codec, ffmpegPid: s.pid }, 'camera streaming');
    }
    this.recent.push(now);
    const frame: Frame = {
      camera,
      ts: now,
      seq: this.seq++,
      width: spec.width,
      height: spec.height,
      channels: spec.channels,
      letterbox: s.letterbox,
      data,
    };
    metrics.cameraFrames.inc({ camera });
    metrics.cameraFrameLatency.observe((performance.now() - s.frameStartedAt) / 1000);
    try {
      this.opts.onFrame(frame);
    } catch (err) {
      if (this.onFrameErrors.shouldLog('onFrame').log) this.log.error({ err }, 'camera frame consumer threw');
    }
  }

  private tick(): void {
    this.opts.metrics.cameraFps.set({ camera: this.opts.camera }, this.measuredFps());
    const s = this.session;
    if (!s || s.killedBy || s.ended) return;
    const quietMs = Date.now() - Math.max(s.startedAt, s.lastFrameAt);
    if (quietMs < (s.frames ? this.stallMs : this.connectMs)) return;
    this.log.warn({ quietMs, frames: s.frames, ffmpegPid: s.pid }, 'camera stalled');
    void this.kill(s, 'stall');
  }

  /** Frames per second over the last few seconds; decays to 0 when frames stop. */
  private measuredFps(): number {
    const now = Date.now();
    while (this.recent.length && (this.recent[0] ?? 0) < now - FPS_WINDOW_MS) this.recent.shift();
    const first = this.recent[0];
    if (this.recent.length < 2 || first === undefined) return 0;
    return (this.recent.length - 1) / Math.max(0.001, (now - first) / 1000);
  }

  /** A stall gets SIGKILL (nothing to save); stop() asks with SIGTERM first. Bounded either way. */
  private async kill(s: Session, why: 'stall' | 'stop'): Promise<void> {
    s.killedBy = why;
    if (s.ended) return;
    if (s.pid !== null) s.cmd.kill(why === 'stop' ? 'SIGTERM' : 'SIGKILL');
    if (await within(s.exited, 2000)) return;
    if (s.pid !== null) {
      this.log.warn({ ffmpegPid: s.pid, signal: why === 'stop' ? 'SIGTERM' : 'SIGKILL' }, 'camera ffmpeg did not exit in 2 s; SIGKILL');
      s.cmd.kill('SIGKILL');
    }
    if (!(await within(s.exited, 2000))) this.log.error({ ffmpegPid: s.pid }, 'camera ffmpeg did not exit after SIGKILL');
  }

  private onEnd(s: Session, err: Error | null): void {
    if (s.ended) return;
    s.ended = true;
    s.markExited();
    if (this.session !== s) return;
    this.session = null;
    this.recent = [];
    if (s.killedBy === 'stop' || this.state === 'stopped') return;
    const msg = err?.message ?? '';
    const code = /exited with code (\d+)/.exec(msg)?.[1];
    const signal = /killed with signal (\w+)/.exec(msg)?.[1];
    if (s.killedBy === 'stall') {
      const what = s.frames ? `no frame for ${this.stallMs / 1000} s` : `no first frame ${this.connectMs / 1000} s after connecting`;
      return this.fail('stall', `${what}${s.errorLine ? ` (ffmpeg: ${s.errorLine})` : ''}`);
    }
    if (err && s.pid === null) return this.fail('error', redact(msg)); // never ran (spawn or prepare failed)
    // Code 0 without an error line: the server ended the stream.
    const said = s.errorLine ?? (code === undefined && !signal ? 'end of stream' : (s.warningLine ?? s.lastLine));
    const error = `ffmpeg ${signal ? `killed by ${signal}` : `exited with code ${code ?? 0}`}${said ? `: ${said}` : ''}`;
    const fields = {
      code: code === undefined ? (signal ? null : 0) : Number(code),
      signal: signal ?? null,
      stderr: said,
      frames: s.frames,
    };
    this.log[error === this.lastError ? 'debug' : 'warn'](fields, 'camera ffmpeg exited');
    this.fail('exit', error, true);
  }

  private fail(reason: ReconnectReason, error: string, logged = false): void {
    const repeat = error === this.lastError;
    if (!logged) this.log[repeat ? 'debug' : 'warn']({ reason, error }, 'camera capture failed');
    this.lastError = error;
    this.reconnects++;
    this.opts.metrics.cameraReconnects.inc({ camera: this.opts.camera, reason });
    const delayMs = backoffDelay(this.attempt++, this.initialMs, this.maxMs, PLUS_MINUS_20);
    this.setState('backoff');
    this.log[repeat ? 'debug' : 'info']({ delayMs, attempt: this.attempt, reason }, `camera reconnect in ${delayMs} ms`);
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }
}

function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
