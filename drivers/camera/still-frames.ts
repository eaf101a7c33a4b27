// Still images → model-input frames the way the camera capture makes them: the real ffmpeg
// decodes and letterboxes (letterboxFilter) to raw bytes in the model's channel order.
// Used by the detect bench and the detector tests (a still image stands in for a camera).
import { spawn } from 'node:child_process';
import { ffmpegPath, letterboxFilter, letterboxFor } from './letterbox.js';
import type { Frame, InputSpec } from '../../models/detector/types.js';

/** Source size from ffmpeg's banner: the first (input) stream's "WxH". */
function sourceSize(stderr: string): { width: number; height: number } | null {
  const line = stderr.split('\n').find((l) => /Stream #\d+:\d+.*: Video:/.test(l));
  const m = line ? /, (\d+)x(\d+)[, \n]/.exec(line + '\n') : null;
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

/** Decodes and letterboxes one image with ffmpeg. `shared` puts the bytes in a SharedArrayBuffer. */
export async function letterboxImage(
  file: string,
  spec: InputSpec,
  opts: { camera?: string; seq?: number; shared?: boolean } = {},
): Promise<Frame> {
  const args = ['-hide_banner', '-nostdin', '-i', file, '-vf', letterboxFilter(spec), '-f', 'rawvideo', '-frames:v', '1', 'pipe:1'];
  const child = spawn(ffmpegPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const bytes = Buffer.concat(chunks);
  const expected = spec.width * spec.height * 3;
  const src = sourceSize(stderr);
  if (code !== 0 || bytes.length !== expected || !src) {
    throw new Error(`ffmpeg could not letterbox ${file} (exit ${code}, ${bytes.length}/${expected} bytes): ${stderr.slice(-400)}`);
  }
  const data = opts.shared ? new Uint8Array(new SharedArrayBuffer(expected)) : new Uint8Array(expected);
  data.set(bytes);
  return {
    camera: opts.camera ?? 'cam',
    ts: Date.now(),
    seq: opts.seq ?? 0,
    width: spec.width,
    height: spec.height,
    channels: spec.channels,
    letterbox: letterboxFor(src.width, src.height, spec),
    data,
  };
}

/** A copy of `frame` for another camera/seq, sharing (not copying) its SharedArrayBuffer bytes. */
export function frameOf(frame: Frame, camera: string, seq: number): Frame {
  return { ...frame, camera, seq, ts: Date.now() };
}
