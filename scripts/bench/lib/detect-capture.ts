// A stand-in camera for the detect bench: ffmpeg loops a still image at a fixed frame rate
// (-re -loop 1 -framerate F), decoding the JPEG and letterboxing it anew for every frame,
// as it would a stream. Frames are assembled from its stdout into SharedArrayBuffers taken
// from a free list (one copy per byte, no allocation per frame once warm) and handed on;
// a buffer goes back on the list when the pool releases its frame (DetectorPool.onRelease),
// so one is never rewritten while the pool may still read it.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { ffmpegPath, letterboxFilter } from '../../../drivers/camera/letterbox.js';
import type { Frame, InputSpec, Letterbox } from '../../../models/detector/types.js';
import { procCpuSeconds } from './proc.js';

export interface LoopCaptureOptions {
  camera: string;
  image: string;
  spec: InputSpec;
  /** Where the image sits in the frame (from a one-off letterbox of the same image). */
  letterbox: Letterbox;
  fps: number;
}

export class LoopCapture {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly free: Uint8Array[] = [];
  private current: Uint8Array | null = null;
  /** Buffers ever allocated: the pool holds at most workers + 1 per camera, so this stays small. */
  allocated = 0;
  private filled = 0;
  private seq = 0;
  private stderr = '';
  /** Main-thread time spent copying stdout chunks into frames, per frame, ms. */
  readonly assemblyMs: number[] = [];
  private assembling = 0;
  private cpuMark: { at: number; frames: number } | null = null;

  constructor(
    private readonly opts: LoopCaptureOptions,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** Takes back a frame's buffer once the pool is done with it. */
  release(data: Uint8Array): void {
    if (data.buffer instanceof SharedArrayBuffer) this.free.push(data);
  }

  private buffer(): Uint8Array {
    if (this.current) return this.current;
    const next = this.free.pop();
    if (next) return (this.current = next);
    this.allocated++;
    return (this.current = new Uint8Array(new SharedArrayBuffer(this.opts.spec.width * this.opts.spec.height * 3)));
  }

  get frames(): number {
    return this.seq;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  start(): void {
    const { spec, fps, image } = this.opts;
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-loop', '1', '-framerate', String(fps), '-i', image];
    args.push('-vf', letterboxFilter(spec), '-f', 'rawvideo', 'pipe:1');
    const child = spawn(ffmpegPath(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr.setEncoding('utf8').on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-2000)));
    child.stdout.on('data', (chunk: Buffer) => this.take(chunk));
  }

  /** Starts counting ffmpeg's CPU from here (after its start-up). */
  markCpu(): void {
    const pid = this.child?.pid;
    const at = pid ? procCpuSeconds(pid) : null;
    this.cpuMark = at === null ? null : { at, frames: this.seq };
  }

  /** ffmpeg CPU ms per frame since markCpu(), or null when unreadable. */
  cpuMsPerFrame(): number | null {
    const pid = this.child?.pid;
    const now = pid ? procCpuSeconds(pid) : null;
    if (!this.cpuMark || now === null || this.seq === this.cpuMark.frames) return null;
    return ((now - this.cpuMark.at) * 1000) / (this.seq - this.cpuMark.frames);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  killNow(): void {
    this.child?.kill('SIGKILL');
  }

  get lastError(): string {
    return this.stderr.trim();
  }

  private take(chunk: Buffer): void {
    const { spec, camera, letterbox } = this.opts;
    let off = 0;
    while (off < chunk.length) {
      const buf = this.buffer();
      const n = Math.min(buf.length - this.filled, chunk.length - off);
      const t0 = performance.now();
      buf.set(chunk.subarray(off, off + n), this.filled);
      this.assembling += performance.now() - t0;
      this.filled += n;
      off += n;
      if (this.filled < buf.length) continue;
      this.assemblyMs.push(this.assembling);
      this.assembling = 0;
      this.filled = 0;
      this.current = null;
      const frame: Frame = { camera, ts: Date.now(), seq: ++this.seq, width: spec.width, height: spec.height, channels: spec.channels, letterbox, data: buf };
      this.onFrame(frame);
    }
  }
}
