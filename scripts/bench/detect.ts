// Detect bench: what a frame costs on its way through the detector, and how the pool scales.
//
//   npm run bench -- detect [--model yolov8n_int8] [--seconds 5] [--workers 1,2] [--cameras 1,2,4]
//                           [--fps N] [--threads 1] [--image path.jpg]
//
//   transport   a model-input-sized frame handed to a worker thread: SharedArrayBuffer vs
//               transferred ArrayBuffer vs copied (lib/detect-transport.ts)
//   bare        session.run on the preprocessed image, this thread, same session options
//   pipeline    ffmpeg looping the image (-re -loop 1 -framerate F: decode + letterbox per
//               frame) → DetectorPool (1 worker) → result summarised on this thread. The
//               per-frame split: capture (ffmpeg's CPU per frame, its own process; plus
//               copying its output into frames), queue (submit → worker starts), preprocess,
//               inference, postprocess, event (the result → per-label counts, the stand-in
//               for the driver's zone step). F defaults to about half of one worker's rate.
//   throughput  for each W in --workers and C in --cameras: a pool of W workers kept
//               saturated by C cameras (each result resubmits a frame for its camera) with
//               the pre-decoded frame; frames/s and efficiency vs the fewest workers
//               (target ≥ 0.8 × W).
// The overhead ratio (target ≤ 1.10) is the pipeline's CPU per frame in this process over
// bare session.run CPU per run. --model is a file in ../shared/models (without .onnx) or a path.
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DetectorOptions } from '../../models/detector/detector.js';
import { openModel } from '../../models/detector/model-info.js';
import type { LoopCapture } from './lib/detect-capture.js';
import { letterboxImage } from '../../drivers/camera/still-frames.js';
import { WARMUP_MS, measureBare, runPipeline, runThroughput, type ThroughputResult } from './lib/detect-measure.js';
import { EFFICIENCY_TARGET, RATIO_TARGET, fillEfficiency, notes, ratios, summaryLine } from './lib/detect-report.js';
import { measureTransport } from './lib/detect-transport.js';
import { guard } from './lib/guard.js';
import { UsageError, number } from './lib/modbus-setup.js';
import { round } from './lib/stats.js';

const SHARED = fileURLToPath(new URL('../../../../shared/', import.meta.url));
const MODELS = join(SHARED, 'models');

interface DetectBenchOptions {
  model: string;
  modelFile: string;
  image: string;
  seconds: number;
  workers: number[];
  cameras: number[];
  fps: number | null;
  threads: number;
}

function list(name: string, raw: string | undefined, fallback: number[], max: number): number[] {
  if (raw === undefined) return fallback;
  const xs = raw.split(',').map((s) => number(name, s.trim(), 0, 1, max, true));
  return [...new Set(xs)].sort((a, b) => a - b);
}

function defaultWorkers(cores: number): number[] {
  const out = new Set<number>();
  for (let w = 1; w < cores; w *= 2) out.add(w);
  out.add(cores);
  return [...out].sort((a, b) => a - b);
}

function modelFile(model: string): string {
  const file = model.includes('/') || model.endsWith('.onnx') ? model : join(MODELS, `${model}.onnx`);
  if (existsSync(file)) return file;
  const known = existsSync(MODELS) ? readdirSync(MODELS).filter((f) => f.endsWith('.onnx')).map((f) => f.slice(0, -5)) : [];
  throw new UsageError(`--model ${model}: no such model file ${file}; known: ${known.join(', ') || `(none in ${MODELS})`}`);
}

export function parseOptions(args: string[]): DetectBenchOptions {
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: Object.fromEntries(['model', 'seconds', 'workers', 'cameras', 'fps', 'threads', 'image'].map((k) => [k, { type: 'string' as const }])),
    }).values as Record<string, string | undefined>;
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message);
    throw err;
  }
  const model = values.model ?? 'yolov8n_int8';
  const image = values.image ?? join(SHARED, 'fixtures/images/bus.jpg');
  if (!existsSync(image)) throw new UsageError(`--image ${image}: not found`);
  return {
    model,
    modelFile: modelFile(model),
    image,
    seconds: number('seconds', values.seconds ?? process.env.BENCH_SECONDS, 5, 0.5, 600, false),
    workers: list('workers', values.workers, defaultWorkers(availableParallelism()), 64),
    cameras: list('cameras', values.cameras, [1, 2, 4], 64),
    fps: values.fps === undefined ? null : number('fps', values.fps, 0, 0.1, 60, false),
    threads: number('threads', values.threads, 1, 1, 64, true),
  };
}

function perWorkerMB(runs: ThroughputResult[]): number | null {
  const peak = (w: number) => Math.max(...runs.filter((r) => r.workers === w).map((r) => r.peakRssMB));
  const ws = runs.map((r) => r.workers);
  const lo = Math.min(...ws);
  const hi = Math.max(...ws);
  return hi > lo ? round((peak(hi) - peak(lo)) / (hi - lo), 1) : null;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const rssAtStart = process.memoryUsage().rss;
  const det: DetectorOptions = { modelFile: opts.modelFile, layout: 'auto', confidence: 0.25, iou: 0.45, maxDetections: 300, intraOpThreads: opts.threads };
  const { session, info } = await openModel(opts.modelFile, det);
  await session.release();
  const frame = await letterboxImage(opts.image, info.spec, { shared: true });
  let capture: LoopCapture | null = null;
  const unguard = guard({ killNow: () => capture?.killNow() }, new Set());
  const log = (s: string) => process.stderr.write(`detect: ${s}\n`);
  try {
    log(`frame hand-off: SharedArrayBuffer vs transfer vs copy (${frame.data.length} bytes)…`);
    const transport = await measureTransport(frame.data.length);
    log(`bare session.run, ${opts.seconds} s…`);
    const bare = await measureBare(det, frame, opts.seconds);
    const fps = opts.fps ?? Math.max(1, Math.min(15, Math.floor(500 / (bare.p50Ms ?? 100))));
    log(`pipeline: ffmpeg camera at ${fps} fps → 1 worker, ${WARMUP_MS / 1000} s warm-up + ${opts.seconds} s…`);
    const pipeline = await runPipeline(det, frame, opts.image, fps, opts.seconds, (c) => (capture = c));
    const runs: ThroughputResult[] = [];
    for (const w of opts.workers) {
      for (const c of opts.cameras) {
        log(`throughput: ${w} worker(s), ${c} camera(s), ${WARMUP_MS / 1000} s warm-up + ${opts.seconds} s…`);
        runs.push(await runThroughput(det, frame, w, c, opts.seconds));
      }
    }
    fillEfficiency(runs);
    const r = ratios(bare, pipeline);
    const peakMB = Math.max(pipeline.peakRssMB, ...runs.map((x) => x.peakRssMB));
    const cores = availableParallelism();
    const result = {
      bench: 'detect',
      options: {
        ...opts,
        pipelineFps: fps,
        warmupSeconds: WARMUP_MS / 1000,
        detector: { layout: info.layout, input: info.spec, classes: info.classes, confidence: det.confidence, iou: det.iou, maxDetections: det.maxDetections, intraOpThreads: det.intraOpThreads },
        image: { file: basename(opts.image), size: [frame.letterbox.srcWidth, frame.letterbox.srcHeight] },
        targets: { ratio: `≤ ${RATIO_TARGET}`, efficiency: `≥ ${EFFICIENCY_TARGET} × workers` },
      },
      machine: { cpus: cpus().length, availableParallelism: cores, cpu: cpus()[0]?.model ?? null, loadavg: loadavg().map((x) => round(x, 2)), node: process.version },
      transport,
      bare,
      pipeline,
      ratio: r,
      throughput: runs,
      memory: {
        rssAtStartMB: round(rssAtStart / 2 ** 20, 1),
        peakRssMB: peakMB,
        perWorkerMB: perWorkerMB(runs),
        note: 'RSS of this whole process: main thread + the pool\'s worker threads (one ONNX session each), plus whatever the allocator kept from the sessions the bench closed before (validation, bare); ffmpeg not included. perWorkerMB: peak RSS growth per added worker across the throughput runs',
      },
      notes: notes(bare, pipeline, runs, transport, r, cores),
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(summaryLine(opts.model, `${info.spec.width}×${info.spec.height}`, bare, pipeline, runs, r, peakMB));
  } finally {
    await (capture as LoopCapture | null)?.stop();
    unguard();
  }
}
