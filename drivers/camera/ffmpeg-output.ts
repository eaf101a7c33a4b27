// What ffmpeg tells us in text: its version (which decides the options we may pass), the
// input stream and filter-graph sizes in its log, and passwords to keep out of our logs.
import { execFile } from 'node:child_process';

/** What `ffmpeg -version` tells us, once per binary. */
export interface FfmpegInfo {
  version: string;
  avformat: [number, number] | null;
  /** RTSP socket I/O timeout (µs): `-stimeout` up to 4.x; 5.0 renamed it `-timeout`, which in 4.x means
   *  "listen for an incoming connection" (so it must never be passed to 4.x). Null: unknown, none passed. */
  timeoutOption: '-stimeout' | '-timeout' | null;
  /** `-loglevel level+...` (tags each line with its level), FFmpeg ≥ 4.1. */
  levelTags: boolean;
}

export function parseFfmpegVersion(text: string): FfmpegInfo {
  const version = /ffmpeg version (\S+)/.exec(text)?.[1] ?? 'unknown';
  const lib = /libavformat\s+(\d+)\.\s*(\d+)/.exec(text);
  // Release builds say "4.4.2" or "n5.1"; git snapshots say "N-47683-g…" and only the lib line helps.
  const rel = /^n?(\d+)\.(\d+)/.exec(version);
  const avformat: [number, number] | null = lib
    ? [Number(lib[1]), Number(lib[2])]
    : rel && Number(rel[1]) >= 4
      ? [Number(rel[1]) + 54, 0]
      : null;
  return {
    version,
    avformat,
    timeoutOption: avformat === null ? null : avformat[0] >= 59 ? '-timeout' : '-stimeout',
    levelTags: avformat !== null && (avformat[0] > 58 || (avformat[0] === 58 && avformat[1] >= 20)),
  };
}

const infoCache = new Map<string, Promise<FfmpegInfo>>();

export function probeFfmpeg(path: string): Promise<FfmpegInfo> {
  let p = infoCache.get(path);
  if (!p) {
    p = new Promise<FfmpegInfo>((resolve, reject) => {
      execFile(path, ['-hide_banner', '-version'], { timeout: 10_000 }, (err, stdout) =>
        err ? reject(new Error(`cannot run ${path} -version: ${err.message}`)) : resolve(parseFfmpegVersion(stdout)),
      );
    });
    p.catch(() => infoCache.delete(path)); // retry the probe on the next attempt (binary installed later)
    infoCache.set(path, p);
  }
  return p;
}

/** The first video stream of the input, from ffmpeg's "Stream #0:0: Video: h264 (High), yuv420p(...), 810x1080 ..." line. */
export function parseVideoStream(line: string): { codec: string; width: number; height: number } | null {
  const m = /Stream #\d+:\d+\S*: Video: ([\w-]+)(.*)$/.exec(line);
  if (!m) return null;
  // The size is the first bare WxH token; "(816x1088)" (coded size) and "0x18424752" (fourcc) are not.
  const size = /(?:^|[\s,])(\d{1,5})x(\d{1,5})(?=[\s,[]|$)/.exec(m[2] ?? '');
  if (!size) return null;
  const width = Number(size[1]);
  const height = Number(size[2]);
  return width > 0 && height > 0 ? { codec: m[1] ?? 'unknown', width, height } : null;
}

/** Decoded size feeding the filter graph (logged at verbose on every (re)configuration, so a mid-stream resize shows). */
export function parseGraphInput(line: string): { width: number; height: number } | null {
  const m = /\[graph \d+ input from stream [^\]]*\] (?:\[\w+\] )?w:(\d+) h:(\d+) /.exec(line);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

/** Passwords in URLs (anywhere in a text) must not reach logs or status: user:pass@ → user:***@. */
export const redact = (s: string): string => s.replace(/(\w+:\/\/[^/:@\s]*):[^/@\s]*@/g, '$1:***@');

export const LEVEL_TAG = /^(?:\[[^\]]* @ 0x[0-9a-f]+\] )?\[(trace|debug|verbose|info|warning|error|fatal|panic)\] ?/;
