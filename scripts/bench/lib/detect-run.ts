// The detect bench's measurements (scripts/bench/detect.ts describes them): bare session.run,
// the ffmpeg-fed pipeline and pool throughput. CPU is this process's (all threads) unless named otherwise.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { ffmpegPath, letterboxFilter } from '../../../drivers/camera/letterbox.js';
import { frameOf } from '../../../drivers/camera/still-frames.js';
import { Detector, type DetectorOptions } from '../../../models/detector/detector.js';
import { onnxSessionOptions } from '../../../models/detector/onnx.js';
import { DetectorPool } from '../../../models/detector/pool.js';
import type { DetectionResult, Frame, InputSpec } from '../../../models/detector/types.js';
import { procCpuSeconds } from './procs.js';
import { sleep } from './report.js';
import { Peaks, UsageWindow } from './sampling.js';
import { mb, round, sum, summarize } from './stats.js';

export const WARMUP_MS = 1000;
const p50 = (xs: number[], digits = 2) => summarize(xs, digits).p50;

/** A bare ort session.run on the same tensor the detector builds, same session options, this thread. */
export async function measureBare(opts: DetectorOptions, frame: Frame, seconds: number) {
  const detector = await Detector.create(opts);
  const session = await ort.InferenceSession.create(opts.modelFile, onnxSessionOptions(opts.intraOpThreads));
  try {
    const input = detector.input(frame);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.data, input.dims) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const ms: number[] = [];
    const window = new UsageWindow();
    while (performance.now() < window.startedAt + seconds * 1000 || ms.length < 5) {
      const t0 = performance.now();
      const out = await session.run(feeds);
      ms.push(performance.now() - t0);
      for (const v of Object.values(out)) v.dispose();
    }
    const s = summarize(ms, 2);
    return { runs: ms.length, p50Ms: s.p50, p99Ms: s.p99, cpuMsPerRun: round((window.close().cpuSeconds * 1000) / ms.length, 2)! };
  } finally {
    await session.release();
    await detector.close();
  }
}

// A stand-in camera: ffmpeg loops a still image, decoding and letterboxing it anew for every frame as
// it would a stream. Its output is copied into SharedArrayBuffers from a free list (no allocation per
// frame once warm); the pool hands a buffer back (onRelease) once it no longer reads it.
class LoopCapture {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly free: Uint8Array[] = [];
  private current: Uint8Array | null = null;
  frames = 0;
  private filled = 0;
  private assembling = 0;
  /** Main-thread time spent copying stdout chunks into frames, per frame, ms. */
  readonly assemblyMs: number[] = [];
  lastError = '';
  constructor(image: string, fps: number, spec: InputSpec, frame: Frame, onFrame: (f: Frame) => void) {
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-loop', '1', '-framerate', String(fps), '-i', image];
    args.push('-vf', letterboxFilter(spec), '-f', 'rawvideo', 'pipe:1');
    this.child = spawn(ffmpegPath(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => (this.lastError = (this.lastError + s).slice(-2000)));
    this.child.stdout.on('data', (chunk: Buffer) => {
      for (let off = 0; off < chunk.length;) {
        const buf = (this.current ??= this.free.pop() ?? new Uint8Array(new SharedArrayBuffer(frame.data.length)));
        const n = Math.min(buf.length - this.filled, chunk.length - off);
        const t0 = performance.now();
        buf.set(chunk.subarray(off, off + n), this.filled);
        this.assembling += performance.now() - t0;
        this.filled += n;
        off += n;
        if (this.filled < buf.length) continue;
        this.assemblyMs.push(this.assembling);
        this.assembling = this.filled = 0;
        this.current = null;
        onFrame({ ...frame, camera: 'cam-0', ts: Date.now(), seq: ++this.frames, data: buf });
      }
    });
  }

  release(data: Uint8Array): void {
    if (data.buffer instanceof SharedArrayBuffer) this.free.push(data);
  }
  cpuSeconds(): number | null {
    return this.child.pid ? procCpuSeconds(this.child.pid) : null;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
  killNow(): void {
    this.child.kill('SIGKILL');
  }
}

/** The driver's step after detection, stood in for by a per-label count (a one-zone summary). */
function summarise(r: DetectionResult): { camera: string; seq: number; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  for (const d of r.detections) counts[d.label] = (counts[d.label] ?? 0) + 1;
  return { camera: r.camera, seq: r.seq, counts };
}

/** Per-frame timings of the results handled while measuring; `last` is the latest result's summary (kept: the event step's output). */
function collect(pool: DetectorPool, then?: (r: DetectionResult) => void) {
  const list = () => [] as number[];
  let last: ReturnType<typeof summarise> | null = null;
  const s = { measuring: false, queue: list(), pre: list(), inference: list(), post: list(), event: list(), latency: list() };
  pool.onResult((r) => {
    const t0 = performance.now();
    last = summarise(r);
    if (s.measuring) {
      const t = r.timings;
      s.queue.push(t.queueMs);
      s.pre.push(t.preprocessMs);
      s.inference.push(t.inferenceMs);
      s.post.push(t.postprocessMs);
      s.event.push(performance.now() - t0);
      s.latency.push(Date.now() - r.ts);
    }
    then?.(r);
  });
  const split = () => ({
    queueMs: p50(s.queue),
    preprocessMs: p50(s.pre),
    inferenceMs: p50(s.inference),
    postprocessMs: p50(s.post),
    eventMs: p50(s.event, 3),
  });
  return { s, split, last: () => last };
}

const dropped = (stats: ReturnType<DetectorPool['stats']>) => sum(Object.values(stats.dropped));

type Camera = { image: string; fps: number; seconds: number };

/** One looping-ffmpeg camera at `fps` → DetectorPool (1 worker) → the result handled on this thread. */
export async function runPipeline(opts: DetectorOptions, frame: Frame, { image, fps, seconds }: Camera, killers: Set<{ killNow(): void }>) {
  const pool = await DetectorPool.open({ ...opts, workers: 1 });
  const c = collect(pool);
  const capture = new LoopCapture(image, fps, pool.spec, frame, (f) => pool.submit(f));
  killers.add(capture);
  pool.onRelease((f) => capture.release(f.data));
  const peaks = new Peaks(100);
  try {
    await sleep(WARMUP_MS);
    const [before, captured0, assembly0, ffmpeg0] = [pool.stats(), capture.frames, capture.assemblyMs.length, capture.cpuSeconds()];
    peaks.start();
    c.s.measuring = true;
    const window = new UsageWindow();
    await sleep(seconds * 1000);
    const cpuMs = window.close().cpuSeconds * 1000;
    c.s.measuring = false;
    peaks.stop();
    const ffmpeg1 = capture.cpuSeconds();
    const captured = capture.frames - captured0;
    if (captured === 0) throw new Error(`ffmpeg produced no frames: ${capture.lastError.trim()}`);
    const ffmpegCpu = ffmpeg0 === null || ffmpeg1 === null ? null : round(((ffmpeg1 - ffmpeg0) * 1000) / captured, 2);
    // Results handled in the window (steady state: as many start as end in it).
    const completed = c.s.inference.length;
    const after = pool.stats();
    return {
      fps,
      frames: { captured, completed, dropped: dropped(after) - dropped(before), failed: after.failed - before.failed },
      /** Per frame, p50 ms. capture: ffmpeg's CPU per frame (decode + letterbox, its own process); assembly: copying its output into the frame. */
      splitP50Ms: { captureCpu: ffmpegCpu, assembly: p50(capture.assemblyMs.slice(assembly0), 3), ...c.split() },
      latencyMs: { p50: p50(c.s.latency, 1), p99: summarize(c.s.latency, 1).p99 }, // Frame's last byte → result handled, ms.
      cpuMsPerFrame: { process: completed ? round(cpuMs / completed, 2) : null, ffmpeg: ffmpegCpu },
      peakRssMB: mb(peaks.rss)!,
      lastEvent: c.last(),
    };
  } finally {
    await capture.stop();
    killers.delete(capture);
    await pool.close();
  }
}

/** W workers, C cameras, every camera always has a fresh frame waiting (each result resubmits one for its camera). */
export async function runThroughput(opts: DetectorOptions, frame: Frame, workers: number, cameras: number, seconds: number) {
  const pool = await DetectorPool.open({ ...opts, workers });
  const seq = new Map<string, number>();
  let running = true;
  const submit = (camera: string) => {
    seq.set(camera, (seq.get(camera) ?? 0) + 1);
    pool.submit(frameOf(frame, camera, seq.get(camera)!)); // the same shared bytes: nothing is copied
  };
  const c = collect(pool, (r) => running && submit(r.camera));
  const peaks = new Peaks(100);
  try {
    // Enough frames that every worker has one and every camera one waiting.
    for (let cam = 0; cam < cameras; cam++) for (let i = 0; i < Math.ceil(workers / cameras) + 1; i++) submit(`cam-${cam}`);
    await sleep(WARMUP_MS);
    const before = pool.stats();
    peaks.start();
    c.s.measuring = true;
    const window = new UsageWindow();
    await sleep(seconds * 1000);
    const after = pool.stats();
    const w = window.close();
    c.s.measuring = false;
    peaks.stop();
    const frames = after.completed - before.completed;
    return {
      workers,
      cameras,
      frames,
      fps: round(frames / w.seconds, 2)!,
      efficiency: null as number | null, // fps ÷ (workers × the 1-worker fps with as many cameras); filled in by the caller.
      splitP50Ms: c.split(),
      cpuMsPerFrame: frames ? round((w.cpuSeconds * 1000) / frames, 2) : null,
      dropped: dropped(after) - dropped(before),
      peakRssMB: mb(peaks.rss)!,
      lastEvent: c.last(),
    };
  } finally {
    running = false;
    await pool.close();
  }
}
