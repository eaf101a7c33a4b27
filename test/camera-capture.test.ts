// RTSP capture against a real RTSP server (GStreamer, serving a still photo as H.264):
// letterboxed frames at the configured rate, exact size, correct letterbox and channel order;
// a dropped or frozen camera is noticed and reconnected with growing delays; stop() leaves
// no ffmpeg behind. Everything on 127.0.0.1.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { RtspCapture, type CaptureOptions } from '../drivers/camera/capture.js';
import { parseFfmpegVersion, parseVideoStream } from '../drivers/camera/ffmpeg-output.js';
import { ffmpegPath, letterboxFilter, letterboxFor } from '../drivers/camera/letterbox.js';
import type { Frame, InputSpec } from '../models/detector/types.js';
import { Metrics } from '../gateway/metrics.js';
import { freePort, metricValue, waitFor } from './helpers/gateway.js';
import { startRtspServer, type RtspServer } from './helpers/rtsp-server.js';
import { SHARED_DIR } from './helpers/shared.js';
import { camera } from '../drivers/camera/index.js';

const SHARED = SHARED_DIR;
const BUS = join(SHARED, 'fixtures/images/bus.jpg'); // 810×1080
const ZIDANE = join(SHARED, 'fixtures/images/zidane.jpg'); // 1280×720
const CENTER_RGB: InputSpec = { width: 640, height: 640, pad: 'center', channels: 'rgb', padValue: 114 };
const TOPLEFT_BGR: InputSpec = { width: 416, height: 416, pad: 'top-left', channels: 'bgr', padValue: 114 };

interface Rig {
  capture: RtspCapture;
  frames: Frame[];
  logs: Array<Record<string, unknown>>;
  metrics: Metrics;
}

function rig(t: Test, url: string, spec: InputSpec, extra: Partial<CaptureOptions> = {}): Rig {
  const frames: Frame[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const metrics = new Metrics();
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as Record<string, unknown>) });
  const capture = new RtspCapture({
    camera: 'cam1',
    url,
    spec,
    fps: 5,
    stallSeconds: 5,
    log,
    metrics: metrics.of(camera),
    onFrame: (f) => frames.push(f),
    ...extra,
  });
  t.teardown(async () => {
    await capture.stop();
    if (process.env.CAPTURE_TEST_LOGS) for (const l of logs) console.error(JSON.stringify(l));
  });
  capture.start();
  return { capture, frames, logs, metrics };
}

async function server(t: Test, image: string): Promise<RtspServer> {
  const s = await startRtspServer({ image, fps: 5 });
  t.teardown(async () => {
    if (s.pid !== null) process.kill(s.pid, 'SIGCONT'); // a SIGSTOPped server ignores SIGTERM
    await s.stop();
  });
  return s;
}

/** The same letterbox computed by ffmpeg straight from the JPEG (no H.264 in between). */
function reference(image: string, spec: InputSpec): Promise<Buffer> {
  return new Promise((res, rej) =>
    execFile(
      ffmpegPath(),
      ['-hide_banner', '-loglevel', 'error', '-i', image, '-vf', letterboxFilter(spec), '-frames:v', '1', '-f', 'rawvideo', 'pipe:1'],
      { encoding: 'buffer', maxBuffer: 16 << 20 },
      (err, out) => (err ? rej(new Error(err.message, { cause: err })) : res(out)),
    ),
  );
}

/** Mean absolute difference over a rectangle; `swap` compares against the reference with R and B exchanged. */
function meanDiff(a: Uint8Array, b: Uint8Array, width: number, box: [number, number, number, number], swap = false): number {
  const [x0, y0, x1, y1] = box;
  let sum = 0;
  let n = 0;
  for (let y = y0; y < y1; y += 3) {
    for (let x = x0; x < x1; x += 3) {
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) sum += Math.abs((a[i + c] ?? 0) - (b[i + (swap ? 2 - c : c)] ?? 0));
      n += 3;
    }
  }
  return sum / n;
}

const px = (f: Frame, x: number, y: number): number[] => Array.from(f.data.subarray((y * f.width + x) * 3, (y * f.width + x) * 3 + 3));
const isGrey = (p: number[]): boolean => p.every((v) => v === 114);

/** ffmpeg processes whose parent is this test process. */
function ffmpegChildren(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${d}/stat`, 'utf8'));
      if (m?.[1] === 'ffmpeg' && Number(m[2]) === process.pid) pids.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const reconnectDelays = (logs: Array<Record<string, unknown>>) =>
  logs.filter((l) => typeof l.delayMs === 'number').map((l) => l.delayMs as number);

t.test('parsing ffmpeg output', async (t) => {
  const v4 = parseFfmpegVersion(
    'ffmpeg version N-47683-g0e8eb07980-static https://johnvansickle.com/ffmpeg/\nlibavformat    58. 24.100 / 58. 24.100\n',
  );
  t.match(v4, { timeoutOption: '-stimeout', levelTags: true, avformat: [58, 24] }, '4.x git snapshot: -stimeout');
  t.match(
    parseFfmpegVersion('ffmpeg version 5.1.6-0+deb12u1 Copyright\nlibavformat    59. 27.100 / 59. 27.100'),
    { timeoutOption: '-timeout' },
    '5.1: -timeout',
  );
  t.match(
    parseFfmpegVersion('ffmpeg version n7.1 Copyright'),
    { timeoutOption: '-timeout', avformat: [61, 0] },
    'no lib line: from the release',
  );
  t.match(parseFfmpegVersion('ffmpeg version N-1234-gabc'), { timeoutOption: null }, 'unknown: no timeout option rather than a wrong one');
  t.same(
    parseVideoStream(
      '    Stream #0:0: Video: h264 (Constrained Baseline), 1 reference frame, yuvj420p(pc, smpte170m/unknown/unknown, progressive, center), 810x1080 (816x1088) [SAR 1:1 DAR 3:4], 5 fps',
    ),
    { codec: 'h264', width: 810, height: 1080 },
  );
  t.same(parseVideoStream('    Stream #0:1[0x100](und): Video: hevc (Main), yuv420p(tv), 2560x1440, 25 fps'), {
    codec: 'hevc',
    width: 2560,
    height: 1440,
  });
  t.equal(parseVideoStream('    Stream #0:0: Video: h264, none'), null, 'size unknown');
});

t.test('640 centre RGB from a 5 fps camera: rate, size, letterbox, padding, seq; stop() kills ffmpeg', async (t) => {
  const srv = await server(t, BUS);
  const { capture, frames, metrics } = rig(t, srv.url, CENTER_RGB);
  await waitFor(() => frames.length > 0 || undefined, 'first frame', 10_000);
  const first = frames.length;
  await sleep(2000);
  t.ok(frames.length - first >= 3, `${frames.length - first} frames in 2 s`);
  const st = capture.status();
  t.ok(st.fps >= 2 && st.fps <= 8, `measured ${st.fps.toFixed(2)} fps`);
  t.match(st, { state: 'streaming', sourceWidth: 810, sourceHeight: 1080, codec: 'h264', reconnects: 0, lastError: null });

  const lb = letterboxFor(810, 1080, CENTER_RGB);
  t.same(lb, { srcWidth: 810, srcHeight: 1080, scale: 640 / 1080, padLeft: 80, padTop: 0 });
  for (const [i, f] of frames.entries()) {
    if (f.data.length !== 640 * 640 * 3 || !(f.data.buffer instanceof SharedArrayBuffer)) t.fail(`frame ${i}: ${f.data.length} bytes`);
    if (i > 0 && f.seq !== (frames[i - 1]?.seq ?? -2) + 1) t.fail(`seq ${frames[i - 1]?.seq} → ${f.seq}`);
  }
  t.equal(new Set(frames.map((f) => f.data.buffer)).size, frames.length, 'a fresh buffer per frame');
  const f = frames[frames.length - 1];
  t.match(f, { camera: 'cam1', width: 640, height: 640, channels: 'rgb', letterbox: lb });
  // Image 480 wide at x 80..559; grey columns either side, over the full height.
  for (const [x, y] of [
    [0, 0],
    [40, 320],
    [79, 639],
    [560, 10],
    [600, 320],
    [639, 639],
  ] as const)
    t.ok(isGrey(px(f, x, y)), `padding at ${x},${y}`);
  const inside = [
    [80, 320],
    [200, 100],
    [320, 320],
    [450, 600],
    [559, 320],
  ].map(([x, y]) => px(f, x ?? 0, y ?? 0));
  t.ok(inside.filter((p) => !isGrey(p)).length >= 4, `image area is not grey: ${JSON.stringify(inside)}`);
  const ref = await reference(BUS, CENTER_RGB);
  const d = meanDiff(f.data, ref, 640, [80, 0, 560, 640]);
  t.ok(d < 8, `matches ffmpeg's own letterbox of the JPEG (mean |Δ| ${d.toFixed(2)})`);

  const text = await metrics.registry.metrics();
  t.ok(metricValue(text, 'outpost_camera_frames_total', { camera: 'cam1' }) >= frames.length, 'frames counted');
  t.equal(metricValue(text, 'outpost_camera_up', { camera: 'cam1' }), 1);
  t.ok(metricValue(text, 'outpost_camera_frame_latency_seconds_count') >= frames.length, 'latency observed');

  const pid = st.pid;
  t.ok(pid !== null && existsSync(`/proc/${pid}`), `ffmpeg ${pid} running`);
  const t0 = Date.now();
  await capture.stop();
  t.ok(Date.now() - t0 < 2500, 'stop() is bounded');
  t.notOk(existsSync(`/proc/${pid}`), 'ffmpeg gone after stop()');
  const n = frames.length;
  await sleep(300);
  t.equal(frames.length, n, 'no frames after stop()');
  t.equal(capture.status().state, 'stopped');
  t.same(ffmpegChildren(), []);
});

t.test('416 top-left BGR: padding only right (portrait) or bottom (landscape)', async (t) => {
  const [bus, zidane] = await Promise.all([server(t, BUS), server(t, ZIDANE)]);
  const a = rig(t, bus.url, TOPLEFT_BGR);
  const b = rig(t, zidane.url, TOPLEFT_BGR);
  await waitFor(() => (a.frames.length >= 2 && b.frames.length >= 2) || undefined, 'frames from both', 10_000);
  const fa = a.frames[1];
  const fb = b.frames[1];
  t.same(fa.letterbox, letterboxFor(810, 1080, TOPLEFT_BGR));
  t.same(fb.letterbox, letterboxFor(1280, 720, TOPLEFT_BGR));
  t.match(
    [fa.letterbox, fb.letterbox],
    [
      { padLeft: 0, padTop: 0 },
      { padLeft: 0, padTop: 0 },
    ],
  );
  t.match(fa, { width: 416, height: 416, channels: 'bgr' });
  // bus: 312×416 image, grey from x = 312; zidane: 416×234 image, grey from y = 234.
  for (const [x, y] of [
    [312, 0],
    [360, 200],
    [415, 415],
  ] as const)
    t.ok(isGrey(px(fa, x, y)), `bus padding at ${x},${y}`);
  t.ok(
    [
      [0, 0],
      [0, 415],
      [311, 415],
      [150, 200],
    ].filter(([x, y]) => !isGrey(px(fa, x ?? 0, y ?? 0))).length >= 3,
    'bus: no padding left/top/bottom',
  );
  for (const [x, y] of [
    [0, 234],
    [200, 300],
    [415, 415],
  ] as const)
    t.ok(isGrey(px(fb, x, y)), `zidane padding at ${x},${y}`);
  t.ok(
    [
      [0, 0],
      [415, 0],
      [415, 233],
      [200, 120],
    ].filter(([x, y]) => !isGrey(px(fb, x ?? 0, y ?? 0))).length >= 3,
    'zidane: no padding left/top/right',
  );
  const [ra, rb] = await Promise.all([reference(BUS, TOPLEFT_BGR), reference(ZIDANE, TOPLEFT_BGR)]);
  for (const [name, f, ref, box] of [
    ['bus', fa, ra, [0, 0, 312, 416]],
    ['zidane', fb, rb, [0, 0, 416, 234]],
  ] as const) {
    const same = meanDiff(f.data, ref, 416, [...box]);
    const swapped = meanDiff(f.data, ref, 416, [...box], true);
    t.ok(same < 8 && same < swapped / 2, `${name}: BGR order (|Δ| ${same.toFixed(2)} vs ${swapped.toFixed(2)} swapped)`);
  }
});

t.test('stream drop: noticed, reconnected with backoff, frames again once the camera is back', async (t) => {
  const srv = await server(t, BUS);
  const { capture, frames, logs, metrics } = rig(t, srv.url, CENTER_RGB, { backoff: { initialMs: 200, maxMs: 1000 } });
  await waitFor(() => frames.length > 0 || undefined, 'first frame', 10_000);
  await srv.stop();
  await waitFor(() => capture.status().state !== 'streaming' || undefined, 'drop noticed', 6000);
  await waitFor(() => capture.status().reconnects >= 2 || undefined, 'a refused reconnect', 5000);
  t.match(capture.status().lastError, /refused/i, 'lastError says why');
  const before = frames.length;
  await srv.restart();
  await waitFor(() => (frames.length > before + 2 && capture.status().state === 'streaming') || undefined, 'frames after restart', 12_000);
  const text = await metrics.registry.metrics();
  t.ok(metricValue(text, 'outpost_camera_reconnects_total', { camera: 'cam1' }) >= 2, 'reconnects counted');
  t.equal(metricValue(text, 'outpost_camera_up', { camera: 'cam1' }), 1, 'up again');
  t.match(capture.status(), { state: 'streaming', lastError: null });
  t.ok(
    frames.every((f, i) => i === 0 || f.seq === (frames[i - 1]?.seq ?? 0) + 1),
    'seq continues across reconnects',
  );
  const delays = reconnectDelays(logs);
  t.ok(delays.length >= 2 && delays.every((d) => d >= 160 && d <= 1000), `backoff delays ${delays.join(', ')} ms`);
  t.ok(
    logs.some((l) => l.msg === 'camera ffmpeg exited'),
    'exit logged',
  );
});

t.test('frozen camera (connection open, no data): the watchdog restarts ffmpeg', async (t) => {
  const srv = await server(t, BUS);
  const { capture, frames, metrics, logs } = rig(t, srv.url, CENTER_RGB, { stallSeconds: 2, backoff: { initialMs: 200, maxMs: 1000 } });
  await waitFor(() => frames.length > 0 || undefined, 'first frame', 10_000);
  process.kill(srv.pid as number, 'SIGSTOP');
  await waitFor(
    async () =>
      metricValue(await metrics.registry.metrics(), 'outpost_camera_reconnects_total', { camera: 'cam1', reason: 'stall' }) >= 1 ||
      undefined,
    'stall restart',
    6000,
  );
  t.ok(
    logs.some((l) => l.msg === 'camera stalled'),
    'stall logged',
  );
  t.match(capture.status().lastError, /no frame for 2 s/);
  process.kill(srv.pid as number, 'SIGCONT');
  const before = frames.length;
  await waitFor(() => frames.length > before + 2 || undefined, 'frames after the camera thaws', 12_000);
  t.equal(capture.status().state, 'streaming');
});

t.test('unreachable camera: growing delays, clear error, no crash; stop() during the wait ends it all', async (t) => {
  const port = await freePort(); // nothing listens here
  const { capture, logs, metrics } = rig(t, `rtsp://user:secret@127.0.0.1:${port}/cam`, CENTER_RGB, {
    backoff: { initialMs: 100, maxMs: 10_000 },
  });
  await waitFor(() => reconnectDelays(logs).length >= 4 || undefined, '4 reconnect attempts', 8000);
  const delays = reconnectDelays(logs);
  t.ok(
    delays.every((d, i) => i === 0 || d > (delays[i - 1] ?? 0)),
    `delays grow: ${delays.join(', ')} ms`,
  );
  const st = capture.status();
  t.match(st.lastError, /Connection refused/, `lastError: ${st.lastError}`);
  t.notMatch(JSON.stringify(logs) + st.lastError, /secret/, 'credentials never logged');
  t.ok(st.reconnects >= 4);
  t.equal(metricValue(await metrics.registry.metrics(), 'outpost_camera_up', { camera: 'cam1' }), 0);

  await waitFor(() => capture.status().state === 'backoff' || undefined, 'a reconnect wait', 3000);
  const pending = reconnectDelays(logs).at(-1) ?? 0;
  const t0 = Date.now();
  await capture.stop();
  t.ok(Date.now() - t0 < 500, `stop() in a wait returns at once (${Date.now() - t0} ms)`);
  const attempts = logs.filter((l) => l.msg === 'camera connecting').length;
  await sleep(Math.min(pending, 2000) + 200);
  t.equal(logs.filter((l) => l.msg === 'camera connecting').length, attempts, 'no attempt after stop()');
  t.same(ffmpegChildren(), [], 'no ffmpeg child left');
  t.equal(capture.status().state, 'stopped');
});
