// The detect bench's three measurements:
//   bare        session.run on one preprocessed tensor, in this thread: the floor
//   pipeline    one looping-ffmpeg camera at a rate the pool keeps up with → DetectorPool
//               (1 worker) → the result handled on this thread: the per-frame time split
//   throughput  W workers, C cameras, every camera always has a fresh frame waiting
//               (each result resubmits one for its camera): frames/s at saturation
// CPU is this process's (all threads, process.cpuUsage) unless named otherwise.
import type { DetectionResult, Frame } from '../../../models/detector/types.js';
import { Detector, type DetectorOptions } from '../../../models/detector/detector.js';
import { DetectorPool } from '../../../models/detector/pool.js';
import { LoopCapture } from './detect-capture.js';
import { frameOf } from '../../../drivers/camera/still-frames.js';
import { Sampler } from './sampler.js';
import { round, summarize } from './stats.js';
import * as ort from 'onnxruntime-node';
import { onnxSessionOptions } from '../../../models/detector/onnx.js';

export const WARMUP_MS = 1000;
const MB = 2 ** 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
const p50 = (xs: number[], digits = 2) => round(summarize(xs).p50, digits);
const p99 = (xs: number[], digits = 2) => round(summarize(xs).p99, digits);

export interface BareResult {
  runs: number;
  p50Ms: number | null;
  p99Ms: number | null;
  cpuMsPerRun: number;
}

/** A bare ort session.run on the same tensor the detector builds, same session options, this thread. */
export async function measureBare(opts: DetectorOptions, frame: Frame, seconds: number): Promise<BareResult> {
  const detector = await Detector.create(opts);
  const session = await ort.InferenceSession.create(opts.modelFile, onnxSessionOptions(opts.intraOpThreads));
  try {
    const input = detector.input(frame);
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input.data, input.dims) };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const ms: number[] = [];
    const c0 = process.cpuUsage();
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end || ms.length < 5) {
      const t0 = performance.now();
      const out = await session.run(feeds);
      ms.push(performance.now() - t0);
      for (const v of Object.values(out)) v.dispose();
    }
    const cpu = cpuMs(process.cpuUsage(c0));
    return { runs: ms.length, p50Ms: p50(ms), p99Ms: p99(ms), cpuMsPerRun: round(cpu / ms.length, 2)! };
  } finally {
    await session.release();
    await detector.close();
  }
}

/** The driver's step after detection, stood in for by a per-label count (a one-zone summary). */
function summarise(r: DetectionResult): { camera: string; seq: number; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  for (const d of r.detections) counts[d.label] = (counts[d.label] ?? 0) + 1;
  return { camera: r.camera, seq: r.seq, counts };
}

interface Split {
  queueMs: number[];
  preprocessMs: number[];
  inferenceMs: number[];
  postprocessMs: number[];
  eventMs: number[];
  latencyMs: number[];
}

const split = (): Split => ({ queueMs: [], preprocessMs: [], inferenceMs: [], postprocessMs: [], eventMs: [], latencyMs: [] });

function record(s: Split, r: DetectionResult, eventMs: number): void {
  s.queueMs.push(r.timings.queueMs);
  s.preprocessMs.push(r.timings.preprocessMs);
  s.inferenceMs.push(r.timings.inferenceMs);
  s.postprocessMs.push(r.timings.postprocessMs);
  s.eventMs.push(eventMs);
  s.latencyMs.push(Date.now() - r.ts);
}

const p50s = (s: Split) => ({
  queueMs: p50(s.queueMs),
  preprocessMs: p50(s.preprocessMs),
  inferenceMs: p50(s.inferenceMs),
  postprocessMs: p50(s.postprocessMs),
  eventMs: p50(s.eventMs, 3),
});

export interface PipelineResult {
  fps: number;
  frames: { captured: number; completed: number; dropped: number; failed: number };
  /** Per frame, p50 ms. capture: ffmpeg's CPU per frame (decode + letterbox, its own process); assembly: copying its output into the frame. */
  splitP50Ms: { captureCpu: number | null; assembly: number | null } & ReturnType<typeof p50s>;
  /** Frame's last byte → result handled, ms. */
  latencyMs: { p50: number | null; p99: number | null };
  cpuMsPerFrame: { process: number | null; ffmpeg: number | null };
  peakRssMB: number;
  /** SharedArrayBuffers the capture allocated (reused through DetectorPool.onRelease). */
  frameBuffers: number;
  /** The last result's summary (what "event" built): a check that the frames were seen. */
  lastEvent: ReturnType<typeof summarise> | null;
}

export async function runPipeline(opts: DetectorOptions, frame: Frame, image: string, fps: number, seconds: number, onCapture: (c: LoopCapture | null) => void): Promise<PipelineResult> {
  const pool = await DetectorPool.open({ ...opts, workers: 1 });
  const s = split();
  let measuring = false;
  let last: ReturnType<typeof summarise> | null = null;
  pool.onResult((r) => {
    const t0 = performance.now();
    last = summarise(r);
    if (measuring) record(s, r, performance.now() - t0);
  });
  const capture = new LoopCapture({ camera: 'cam-0', image, spec: pool.spec, letterbox: frame.letterbox, fps }, (f) => pool.submit(f));
  pool.onRelease((f) => capture.release(f.data));
  onCapture(capture);
  const sampler = new Sampler(100);
  try {
    capture.start();
    await sleep(WARMUP_MS);
    const before = pool.stats();
    const captured0 = capture.frames;
    const assembly0 = capture.assemblyMs.length;
    capture.markCpu();
    sampler.start();
    measuring = true;
    const c0 = process.cpuUsage();
    await sleep(seconds * 1000);
    const cpu = cpuMs(process.cpuUsage(c0));
    measuring = false;
    sampler.stop();
    const ffmpegCpu = capture.cpuMsPerFrame();
    const after = pool.stats();
    if (capture.frames === captured0) throw new Error(`ffmpeg produced no frames: ${capture.lastError}`);
    // Results handled in the window (steady state: as many start as end in it).
    const completed = s.inferenceMs.length;
    const dropped = Object.values(after.dropped).reduce((a, b) => a + b, 0) - Object.values(before.dropped).reduce((a, b) => a + b, 0);
    return {
      fps,
      frames: { captured: capture.frames - captured0, completed, dropped, failed: after.failed - before.failed },
      splitP50Ms: { captureCpu: round(ffmpegCpu, 2), assembly: p50(capture.assemblyMs.slice(assembly0), 3), ...p50s(s) },
      latencyMs: { p50: p50(s.latencyMs, 1), p99: p99(s.latencyMs, 1) },
      cpuMsPerFrame: { process: completed ? round(cpu / completed, 2) : null, ffmpeg: round(ffmpegCpu, 2) },
      peakRssMB: round(sampler.peakRss / MB, 1)!,
      frameBuffers: capture.allocated,
      lastEvent: last,
    };
  } finally {
    await capture.stop();
    onCapture(null);
    await pool.close();
  }
}

export interface ThroughputResult {
  workers: number;
  cameras: number;
  frames: number;
  fps: number;
  /** fps ÷ (workers × the 1-worker fps with as many cameras); filled in by the caller. */
  efficiency: number | null;
  splitP50Ms: ReturnType<typeof p50s>;
  cpuMsPerFrame: number | null;
  dropped: number;
  peakRssMB: number;
  lastEvent: ReturnType<typeof summarise> | null;
}

export async function runThroughput(opts: DetectorOptions, frame: Frame, workers: number, cameras: number, seconds: number): Promise<ThroughputResult> {
  const pool = await DetectorPool.open({ ...opts, workers });
  const s = split();
  const seq = new Map<string, number>();
  let measuring = false;
  let running = true;
  const submit = (camera: string) => {
    const n = (seq.get(camera) ?? 0) + 1;
    seq.set(camera, n);
    pool.submit(frameOf(frame, camera, n)); // the same shared bytes: nothing is copied
  };
  let last: ReturnType<typeof summarise> | null = null;
  pool.onResult((r) => {
    const t0 = performance.now();
    last = summarise(r);
    if (measuring) record(s, r, performance.now() - t0);
    if (running) submit(r.camera);
  });
  const sampler = new Sampler(100);
  try {
    // Enough frames that every worker has one and every camera one waiting.
    const perCamera = Math.ceil(workers / cameras) + 1;
    for (let c = 0; c < cameras; c++) for (let i = 0; i < perCamera; i++) submit(`cam-${c}`);
    await sleep(WARMUP_MS);
    const before = pool.stats();
    sampler.start();
    measuring = true;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const after = pool.stats();
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuMs(process.cpuUsage(c0));
    measuring = false;
    sampler.stop();
    const frames = after.completed - before.completed;
    const dropped = Object.values(after.dropped).reduce((a, b) => a + b, 0) - Object.values(before.dropped).reduce((a, b) => a + b, 0);
    return {
      workers,
      cameras,
      frames,
      fps: round(frames / elapsed, 2)!,
      efficiency: null,
      splitP50Ms: p50s(s),
      cpuMsPerFrame: frames ? round(cpu / frames, 2) : null,
      dropped,
      peakRssMB: round(sampler.peakRss / MB, 1)!,
      lastEvent: last,
    };
  } finally {
    running = false;
    await pool.close();
  }
}
