// Snapshots: the analysed frame with its boxes drawn, cropped to the picture (no letterbox
// bars), encoded as JPEG by ffmpeg and kept under <dataDir>/snapshots. Bounded by age and
// by total size: after every save the oldest files go first. Ids are file names of a
// fixed shape, so the API can serve one without any path from the request reaching disk.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Detection, Frame } from '../../models/detector/types.js';

const SNAPSHOT_ID = /^[A-Za-z0-9_.-]{1,64}-\d{13}-[0-9a-f]{8}\.jpg$/;

export interface SnapshotOptions {
  dir: string;
  maxAgeDays: number;
  maxTotalMB: number;
  quality: number;
  ffmpeg: string;
}

interface Entry {
  id: string;
  ts: number;
  bytes: number;
}

const COLORS: readonly [number, number, number][] = [
  [255, 56, 56],
  [255, 157, 151],
  [255, 112, 31],
  [255, 178, 29],
  [207, 210, 49],
  [72, 249, 10],
  [146, 204, 23],
  [61, 219, 134],
  [26, 147, 52],
  [0, 212, 187],
];

export class SnapshotStore {
  private entries: Entry[] = [];
  private totalBytes = 0;

  constructor(private readonly opts: SnapshotOptions) {
    mkdirSync(opts.dir, { recursive: true });
    for (const name of readdirSync(opts.dir)) {
      if (!SNAPSHOT_ID.test(name)) continue;
      const st = statSync(join(opts.dir, name));
      this.entries.push({ id: name, ts: st.mtimeMs, bytes: st.size });
      this.totalBytes += st.size;
    }
    this.entries.sort((a, b) => a.ts - b.ts);
  }

  get count(): number {
    return this.entries.length;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The file of a snapshot id, or null for an id that is malformed or gone. */
  path(id: string): string | null {
    if (!SNAPSHOT_ID.test(id) || !this.entries.some((e) => e.id === id)) return null;
    return join(this.opts.dir, id);
  }

  async save(frame: Frame, detections: readonly Detection[], now = Date.now()): Promise<string> {
    const jpeg = await encodeJpeg(this.opts.ffmpeg, drawBoxes(frame, detections), frame, this.opts.quality);
    const id = `${frame.camera}-${String(frame.ts).padStart(13, '0')}-${randomBytes(4).toString('hex')}.jpg`;
    writeFileSync(join(this.opts.dir, id), jpeg);
    this.entries.push({ id, ts: now, bytes: jpeg.length });
    this.totalBytes += jpeg.length;
    this.prune(now);
    return id;
  }

  /** Deletes snapshots older than maxAgeDays, then the oldest while over maxTotalMB. */
  prune(now = Date.now()): number {
    const cutoff = now - this.opts.maxAgeDays * 86_400_000;
    const limit = this.opts.maxTotalMB * 1024 * 1024;
    let removed = 0;
    while (this.entries.length > 0 && (this.entries[0].ts < cutoff || this.totalBytes > limit)) {
      const e = this.entries.shift()!;
      rmSync(join(this.opts.dir, e.id), { force: true });
      this.totalBytes -= e.bytes;
      removed++;
    }
    return removed;
  }
}

/** A copy of the frame with 2-px rectangles around the detections (source → frame pixels). */
export function drawBoxes(frame: Frame, detections: readonly Detection[]): Uint8Array {
  const out = new Uint8Array(frame.data);
  const { scale, padLeft, padTop } = frame.letterbox;
  const bgr = frame.channels === 'bgr';
  for (const d of detections) {
    const [r, g, b] = COLORS[d.classId % COLORS.length];
    const c = bgr ? [b, g, r] : [r, g, b];
    const x1 = Math.round(d.box[0] * scale + padLeft),
      y1 = Math.round(d.box[1] * scale + padTop);
    const x2 = Math.round(d.box[2] * scale + padLeft),
      y2 = Math.round(d.box[3] * scale + padTop);
    for (let t = 0; t < 2; t++) {
      hline(out, frame.width, frame.height, x1, x2, y1 + t, c);
      hline(out, frame.width, frame.height, x1, x2, y2 - t, c);
      vline(out, frame.width, frame.height, x1 + t, y1, y2, c);
      vline(out, frame.width, frame.height, x2 - t, y1, y2, c);
    }
  }
  return out;
}

function put(buf: Uint8Array, w: number, h: number, x: number, y: number, c: readonly number[]): void {
  if (x < 0 || y < 0 || x >= w || y >= h) return;
  const i = (y * w + x) * 3;
  buf[i] = c[0]!;
  buf[i + 1] = c[1]!;
  buf[i + 2] = c[2]!;
}

function hline(buf: Uint8Array, w: number, h: number, x1: number, x2: number, y: number, c: readonly number[]): void {
  for (let x = x1; x <= x2; x++) put(buf, w, h, x, y, c);
}

function vline(buf: Uint8Array, w: number, h: number, x: number, y1: number, y2: number, c: readonly number[]): void {
  for (let y = y1; y <= y2; y++) put(buf, w, h, x, y, c);
}

/** Raw frame → JPEG of the picture area only, by one short ffmpeg run (bounded to 10 s). */
function encodeJpeg(ffmpeg: string, pixels: Uint8Array, frame: Frame, quality: number): Promise<Buffer> {
  const { srcWidth, srcHeight, scale, padLeft, padTop } = frame.letterbox;
  const cw = Math.min(frame.width - padLeft, Math.round(srcWidth * scale));
  const ch = Math.min(frame.height - padTop, Math.round(srcHeight * scale));
  const args = [
    '-v',
    'error',
    '-f',
    'rawvideo',
    '-pix_fmt',
    frame.channels === 'bgr' ? 'bgr24' : 'rgb24',
    '-s',
    `${frame.width}x${frame.height}`,
    '-i',
    'pipe:0',
    '-vf',
    `crop=${cw}:${ch}:${padLeft}:${padTop}`,
    '-frames:v',
    '1',
    '-q:v',
    String(quality),
    '-f',
    'mjpeg',
    'pipe:1',
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`snapshot encoder (${ffmpeg}) failed to start: ${e.message}`));
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && out.length > 0) resolve(Buffer.concat(out));
      else reject(new Error(`snapshot encoder exited with ${String(code)}: ${err.trim().split('\n').pop() ?? ''}`));
    });
    p.stdin.on('error', () => undefined); // a dying encoder closes its stdin; the close handler reports it
    p.stdin.end(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength));
  });
}
