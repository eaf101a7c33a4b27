// The detector pool: frames from every camera → worker threads (one ONNX session each) →
// results. Backpressure is by freshness, never by queueing: at most `workers` frames are
// in flight, and each camera has at most one frame waiting; a newer frame replaces the
// waiting one (counted as a drop for that camera), so a slow model makes cameras skip
// frames instead of lagging behind or growing memory. Waiting cameras are served oldest
// first, so one fast camera cannot starve the others.
//
// Frames cross to the workers without copying their pixels: a SharedArrayBuffer-backed
// frame is shared (the sender must not rewrite it before onRelease hands it back), an
// ArrayBuffer-backed frame that owns its whole buffer is transferred (the sender's view is
// detached). Only a view into a larger ArrayBuffer (e.g. a slice of a stream chunk) is
// copied first, and counted in stats().copied. Measured by the detect bench (a 640×640 frame,
// round trip to a worker / this process's CPU per frame, including one fill of the buffer):
// a reused SharedArrayBuffer 125 µs / 129 µs, a fresh transferred ArrayBuffer 187 µs / 464 µs
// (the sender must allocate a new one every frame), a copy 435 µs / 711 µs, a fresh
// SharedArrayBuffer per frame 848 µs / 858 µs. Hence: capture writes into a small ring of
// SharedArrayBuffers; transfer is accepted as the next best; copying is the fallback.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { DetectionResult, Frame, InputSpec } from './types.js';
import type { DetectorOptions } from './detector.js';
import { openModel, type ModelInfo } from './model-info.js';
import type { DetectTask } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

export interface PoolOptions extends DetectorOptions {
  workers: number;
}

export interface PoolStats {
  submitted: number;
  completed: number;
  failed: number;
  /** Frames replaced while waiting (or still waiting at close), per camera. */
  dropped: Record<string, number>;
  inFlight: number;
  waiting: number;
  /** Frames whose bytes had to be copied to cross threads (neither shared nor transferable). */
  copied: number;
}

interface Job {
  frame: Frame;
  submittedAt: number;
}

const now = () => performance.timeOrigin + performance.now();

export class DetectorPool {
  private readonly waiting = new Map<string, Job>();
  private inFlight = 0;
  private submitted = 0;
  private completed = 0;
  private failed = 0;
  private copied = 0;
  private readonly dropped: Record<string, number> = {};
  private readonly resultListeners: Array<(r: DetectionResult) => void> = [];
  private readonly errorListeners: Array<(err: Error, camera: string, seq: number) => void> = [];
  private readonly releaseListeners: Array<(frame: Frame) => void> = [];
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  private constructor(
    private readonly piscina: Piscina<DetectTask, DetectionResult>,
    readonly info: ModelInfo,
    readonly workers: number,
  ) {}

  /** Loads the model once here, so a bad file, layout or labels file fails now, named. */
  static async open(opts: PoolOptions): Promise<DetectorPool> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1)
      throw new Error(`detector workers must be a positive integer, got ${opts.workers}`);
    const { session, info } = await openModel(opts.modelFile, opts);
    await session.release();
    const workerData: DetectorOptions = {
      modelFile: opts.modelFile,
      layout: info.layout,
      labelsFile: opts.labelsFile,
      confidence: opts.confidence,
      iou: opts.iou,
      maxDetections: opts.maxDetections,
      intraOpThreads: opts.intraOpThreads,
    };
    const piscina = new Piscina<DetectTask, DetectionResult>({
      filename: WORKER,
      minThreads: opts.workers,
      maxThreads: opts.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: 2 ** 31 - 1,
      workerData,
    });
    return new DetectorPool(piscina, info, opts.workers);
  }

  get spec(): InputSpec {
    return this.info.spec;
  }

  get labels(): readonly string[] {
    return this.info.labels;
  }

  onResult(cb: (r: DetectionResult) => void): void {
    this.resultListeners.push(cb);
  }

  /** A frame whose detection failed (bad frame, worker crash); its slot is already reused. */
  onError(cb: (err: Error, camera: string, seq: number) => void): void {
    this.errorListeners.push(cb);
  }

  /**
   * A frame the pool will not read again: detected, failed, replaced while waiting, or
   * discarded at close. A producer reusing SharedArrayBuffers takes them back here. The pool
   * holds at most workers + 1 frames of one camera, but a round-robin ring of that size is
   * not safe: an old frame can still be in flight while newer ones were replaced.
   */
  onRelease(cb: (frame: Frame) => void): void {
    this.releaseListeners.push(cb);
  }

  /** Runs the frame as soon as a worker is free; replaces this camera's waiting frame otherwise. */
  submit(frame: Frame): void {
    if (this.closed) throw new Error('detector pool is closed');
    const s = this.info.spec;
    if (
      frame.width !== s.width ||
      frame.height !== s.height ||
      frame.channels !== s.channels ||
      frame.data.length !== s.width * s.height * 3
    ) {
      throw new Error(
        `frame ${frame.camera}#${frame.seq} is ${frame.width}×${frame.height} ${frame.channels} (${frame.data.length} bytes); the model wants ${s.width}×${s.height} ${s.channels}`,
      );
    }
    this.submitted++;
    const job: Job = { frame, submittedAt: now() };
    if (this.inFlight < this.workers) return this.dispatch(job);
    const replaced = this.waiting.get(frame.camera);
    // Map.set on an existing key keeps its place: the camera stays in line where it joined.
    this.waiting.set(frame.camera, job);
    if (replaced) this.drop(replaced);
  }

  stats(): PoolStats {
    return {
      submitted: this.submitted,
      completed: this.completed,
      failed: this.failed,
      dropped: { ...this.dropped },
      inFlight: this.inFlight,
      waiting: this.waiting.size,
      copied: this.copied,
    };
  }

  /** Resolves when nothing is in flight or waiting. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops waiting frames, lets in-flight ones finish (their results are still delivered), stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const left = [...this.waiting.values()];
    this.waiting.clear();
    for (const job of left) this.drop(job);
    await this.idle();
    await this.piscina.destroy();
  }

  private drop(job: Job): void {
    const { camera } = job.frame;
    this.dropped[camera] = (this.dropped[camera] ?? 0) + 1;
    this.release(job.frame);
  }

  private release(frame: Frame): void {
    for (const cb of this.releaseListeners) cb(frame);
  }

  private dispatch(job: Job): void {
    this.inFlight++;
    const { frame, transferList } = this.crossable(job.frame);
    const { camera, seq } = frame;
    let task: Promise<DetectionResult>;
    try {
      task = this.piscina.run({ frame, submittedAt: job.submittedAt }, transferList ? { transferList } : {});
    } catch (err) {
      task = Promise.reject(err instanceof Error ? err : new Error(String(err))); // e.g. a buffer that cannot be transferred: fail the frame, keep the slot count right
    }
    task.then(
      (result) => {
        this.completed++;
        this.settled();
        this.release(job.frame);
        for (const cb of this.resultListeners) cb(result);
      },
      (err: Error) => {
        this.failed++;
        this.settled();
        this.release(job.frame);
        for (const cb of this.errorListeners) cb(err, camera, seq);
      },
    );
  }

  /** Frees the slot and hands it to the camera that has waited longest, before callbacks run. */
  private settled(): void {
    this.inFlight--;
    while (this.inFlight < this.workers && this.waiting.size > 0) {
      const [camera, job] = this.waiting.entries().next().value as [string, Job];
      this.waiting.delete(camera);
      this.dispatch(job);
    }
    if (this.inFlight === 0 && this.waiting.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** How the frame's bytes cross threads: shared, transferred, or (last resort) copied then transferred. */
  private crossable(frame: Frame): { frame: Frame; transferList?: ArrayBuffer[] } {
    const buf = frame.data.buffer;
    if (typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer) return { frame };
    if (frame.data.byteOffset === 0 && frame.data.byteLength === buf.byteLength) return { frame, transferList: [buf as ArrayBuffer] };
    // Cloning a view clones its whole backing buffer; copy just the frame and move that.
    this.copied++;
    const data = frame.data.slice();
    return { frame: { ...frame, data }, transferList: [data.buffer] };
  }
}
