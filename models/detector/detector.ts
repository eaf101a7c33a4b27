// One detector: an ONNX session plus its pre- and post-processing, used by one thread.
// Its buffers are reused from frame to frame, so calls are serialised: a second detect()
// waits for the first instead of overwriting the input tensor under it.
import type { ModelSession } from './backend.js';
import type { Detection, Frame, FrameTimings, InputSpec, ModelLayout } from './types.js';
import { openModel, type ModelInfo } from './model-info.js';
import { Postprocessor } from './postprocess.js';
import { Preprocessor } from './preprocess.js';

export interface DetectorOptions {
  modelFile: string;
  layout: ModelLayout;
  labelsFile?: string | undefined;
  confidence: number;
  iou: number;
  maxDetections: number;
  intraOpThreads: number;
}

export type DetectTimings = Omit<FrameTimings, 'queueMs'>;

export interface DetectOutput {
  detections: Detection[];
  timings: DetectTimings;
}

export class Detector {
  private readonly pre: Preprocessor;
  private readonly post: Postprocessor;
  private readonly dims: readonly number[];
  private last: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly session: ModelSession,
    readonly info: ModelInfo,
    opts: DetectorOptions,
  ) {
    const { width, height } = info.spec;
    this.pre = new Preprocessor(width, height, info.pixelScale);
    this.post = new Postprocessor({ ...info, width, height }, opts);
    this.dims = [1, 3, height, width];
  }

  static async create(opts: DetectorOptions): Promise<Detector> {
    const { session, info } = await openModel(opts.modelFile, opts);
    return new Detector(session, info, opts);
  }

  get spec(): InputSpec {
    return this.info.spec;
  }

  /** The model input for a frame (the detector's reused buffer) and its dims: for timing bare inference. */
  input(frame: Frame): { data: Float32Array; dims: readonly number[] } {
    this.check(frame);
    return { data: this.pre.run(frame.data), dims: this.dims };
  }

  detect(frame: Frame): Promise<DetectOutput> {
    const run = this.last.then(() => this.detectNow(frame));
    this.last = run.catch(() => undefined);
    return run;
  }

  private async detectNow(frame: Frame): Promise<DetectOutput> {
    this.check(frame);
    const t0 = performance.now();
    const input = this.pre.run(frame.data);
    const t1 = performance.now();
    const out = await this.session.run(input, this.dims).catch((err: Error) => {
      throw new Error(`model ${this.info.file}: ${err.message}`);
    });
    const t2 = performance.now();
    const detections = this.post.run(out.data, frame.letterbox);
    out.dispose();
    const t3 = performance.now();
    return { detections, timings: { preprocessMs: t1 - t0, inferenceMs: t2 - t1, postprocessMs: t3 - t2 } };
  }

  private check(frame: Frame): void {
    const s = this.info.spec;
    if (frame.width !== s.width || frame.height !== s.height || frame.channels !== s.channels) {
      throw new Error(
        `frame ${frame.camera}#${frame.seq} is ${frame.width}×${frame.height} ${frame.channels}; model ${this.info.file} wants ${s.width}×${s.height} ${s.channels}`,
      );
    }
  }

  async close(): Promise<void> {
    await this.last;
    await this.session.release();
  }
}
