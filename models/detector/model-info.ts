// Opens a YOLO-family ONNX detector and works out, from the session's own metadata, what
// it wants (input size, pad, channel order, pixel scale) and how to read what it returns
// (layout, anchors, classes). Everything the rest of the detector needs comes from here,
// so a wrong model, layout or labels file fails at start with the file named.
import { existsSync } from 'node:fs';
import type { DetectorBackend, ModelMetadata, ModelSession } from './backend.js';
import { onnxBackend } from './onnx.js';
import type { InputSpec, ModelLayout } from './types.js';
import { COCO_LABELS, loadLabels } from './labels.js';

export type Layout = Exclude<ModelLayout, 'auto'>;

export interface ModelInfo {
  file: string;
  layout: Layout;
  inputName: string;
  outputName: string;
  /** Output dims with the batch fixed at 1: yolov8 [1, 4+C, N]; yolov5/yolox [1, N, 5+C]. */
  outputShape: [number, number, number];
  anchors: number;
  classes: number;
  labels: readonly string[];
  spec: InputSpec;
  /** Each pixel byte is multiplied by this: 1/255 for Ultralytics, 1 (raw 0..255) for YOLOX. */
  pixelScale: number;
}

export interface SessionOptions {
  layout: ModelLayout;
  labelsFile?: string | undefined;
  intraOpThreads: number;
}

const YOLOX_STRIDES = [8, 16, 32] as const;

/** Anchor count of a YOLOX head at this input size: one per grid cell at strides 8, 16, 32. */
function yoloxAnchors(width: number, height: number): number {
  let n = 0;
  for (const s of YOLOX_STRIDES) n += Math.floor(width / s) * Math.floor(height / s);
  return n;
}

/** Opens the model with `backend` (ONNX Runtime by default) and describes it. */
export async function openModel(
  file: string,
  opts: SessionOptions,
  backend: DetectorBackend = onnxBackend,
): Promise<{ session: ModelSession; info: ModelInfo }> {
  if (!existsSync(file)) throw new Error(`model file ${file} not found`);
  // 0 would be ORT's default: a pool per session sized to the machine, its threads pinned to
  // cores, so several workers' sessions would pile onto the same cores.
  if (!Number.isInteger(opts.intraOpThreads) || opts.intraOpThreads < 1)
    throw new Error(`intraOpThreads must be a positive integer, got ${opts.intraOpThreads}`);
  const labels = opts.labelsFile !== undefined ? loadLabels(opts.labelsFile) : COCO_LABELS;
  let session: ModelSession;
  try {
    session = await backend.open(file, { intraOpThreads: opts.intraOpThreads });
  } catch (err) {
    throw new Error(`model ${file}: ${backend.name} could not load it: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { session, info: describeModel(file, session, opts.layout, labels, opts.labelsFile) };
  } catch (err) {
    await session.release().catch(() => undefined);
    throw err;
  }
}

type Dim = number | string;

/** Reads the model's metadata; throws naming `file` when it is not a detector we can run. */
export function describeModel(
  file: string,
  session: ModelMetadata,
  layout: ModelLayout,
  labels: readonly string[],
  labelsFile?: string,
): ModelInfo {
  const fail = (why: string): never => {
    throw new Error(`model ${file}: ${why}`);
  };
  const input = session.inputMetadata[0];
  const output = session.outputMetadata[0];
  if (!input || !output) return fail('it has no inputs or no outputs');
  if (!input.isTensor || input.type !== 'float32') return fail(`input "${input.name}" is not a float32 tensor`);
  if (!output.isTensor || output.type !== 'float32') return fail(`output "${output.name}" is not a float32 tensor`);
  const [n, c, height, width] = input.shape;
  if (input.shape.length !== 4 || !batchOfOne(n) || c !== 3 || !positive(height) || !positive(width)) {
    return fail(`input "${input.name}" is ${fmt(input.shape)}, not a 4-D image input [1,3,H,W] of fixed size`);
  }
  const outShape = output.shape;
  const [m, a, b] = outShape;
  const unknown = `unknown output shape ${fmt(outShape)} of "${output.name}": expected [1,4+C,N] (yolov8) or [1,N,5+C] (yolov5, yolox)`;
  if (outShape.length !== 3 || !batchOfOne(m) || !positive(a) || !positive(b)) return fail(unknown);
  const gridCount = yoloxAnchors(width, height);
  const fitsV8 = a > 4 && a < b;
  const fitsRows = b > 5 && b < a;
  if (layout === 'auto' && !fitsV8 && !fitsRows) return fail(unknown);
  const chosen: Layout = layout !== 'auto' ? layout : fitsV8 ? 'yolov8' : a === gridCount ? 'yolox' : 'yolov5';
  if (chosen === 'yolov8' && !fitsV8)
    return fail(`layout yolov8 expects output [1,4+C,N] with 4+C < N, but "${output.name}" is ${fmt(outShape)}`);
  if (chosen !== 'yolov8' && !fitsRows)
    return fail(`layout ${chosen} expects output [1,N,5+C] with 5+C < N, but "${output.name}" is ${fmt(outShape)}`);
  if (chosen === 'yolox' && a !== gridCount) {
    return fail(
      `layout yolox expects ${gridCount} anchors (strides 8/16/32 at ${width}×${height}), but "${output.name}" is ${fmt(outShape)}`,
    );
  }
  const anchors = chosen === 'yolov8' ? b : a;
  const classes = chosen === 'yolov8' ? a - 4 : b - 5;
  if (classes !== labels.length) {
    const source = labelsFile !== undefined ? `labels file ${labelsFile} has` : 'the default COCO labels have';
    return fail(`it has ${classes} classes (layout ${chosen}, output ${fmt(outShape)}) but ${source} ${labels.length}`);
  }
  const yolox = chosen === 'yolox';
  return {
    file,
    layout: chosen,
    inputName: input.name,
    outputName: output.name,
    outputShape: [1, a, b],
    anchors,
    classes,
    labels,
    spec: { width, height, pad: yolox ? 'top-left' : 'center', channels: yolox ? 'bgr' : 'rgb', padValue: 114 },
    pixelScale: yolox ? 1 : 1 / 255,
  };
}

function positive(d: Dim | undefined): d is number {
  return typeof d === 'number' && Number.isInteger(d) && d > 0;
}

/** A batch dimension we can feed one image to: 1, or symbolic (dynamic batch). */
function batchOfOne(d: Dim | undefined): boolean {
  return d === 1 || typeof d === 'string';
}

function fmt(shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`;
}
