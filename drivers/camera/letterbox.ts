// Letterboxing is done by ffmpeg, in C, on the way out of the decoder: the filter below
// scales the image to fit the model input keeping its aspect ratio and pads it with grey
// 114, so the frames that reach JavaScript are already model-sized. The same arithmetic
// in JS (`letterboxFor`) maps boxes back to source pixels.
//   r = min(W / w, H / h); new size = round(w·r) × round(h·r)
//   centre: left = round((W − newW)/2 − 0.1), top likewise; top-left: 0, 0
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import type { InputSpec, Letterbox } from '../../models/detector/types.js';

export function letterboxFor(srcWidth: number, srcHeight: number, spec: InputSpec): Letterbox {
  const scale = Math.min(spec.width / srcWidth, spec.height / srcHeight);
  const w = Math.round(srcWidth * scale);
  const h = Math.round(srcHeight * scale);
  const center = spec.pad === 'center';
  return {
    srcWidth,
    srcHeight,
    scale,
    padLeft: center ? Math.round((spec.width - w) / 2 - 0.1) : 0,
    padTop: center ? Math.round((spec.height - h) / 2 - 0.1) : 0,
  };
}

/** The ffmpeg `-vf` chain producing `spec`-sized frames (bilinear, like the measured fixtures). */
export function letterboxFilter(spec: InputSpec, fps?: number): string {
  const { width: W, height: H } = spec;
  const r = `min(${W}/iw\\,${H}/ih)`;
  const x = spec.pad === 'center' ? `round((ow-iw)/2-0.1)` : '0';
  const y = spec.pad === 'center' ? `round((oh-ih)/2-0.1)` : '0';
  const grey = spec.padValue.toString(16).padStart(2, '0').repeat(3);
  const pixfmt = spec.channels === 'rgb' ? 'rgb24' : 'bgr24';
  return [
    ...(fps !== undefined ? [`fps=${fps}`] : []),
    `scale=w='round(iw*${r})':h='round(ih*${r})':flags=bilinear`,
    `format=${pixfmt}`,
    `pad=${W}:${H}:${x}:${y}:color=0x${grey}`,
  ].join(',');
}

/** The ffmpeg binary: configured, else `ffmpeg` on PATH, else the one @ffmpeg-installer ships. */
export function ffmpegPath(configured?: string): string {
  if (configured) return configured;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'ffmpeg'))) return join(dir, 'ffmpeg');
  }
  try {
    const require = createRequire(import.meta.url);
    return (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    throw new Error('no ffmpeg found: install it (apt-get install ffmpeg) or set drivers.camera.ffmpeg');
  }
}
