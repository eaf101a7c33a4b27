// Piscina worker: one Detector (one ONNX session) per thread, created on the first task
// from the options in workerData. onnxruntime-node runs the session on the calling thread,
// so each worker is one core's worth of inference (with intraOpThreads = 1).
import { Piscina } from 'piscina';
import type { DetectionResult, Frame } from './types.js';
import { Detector, type DetectorOptions } from './detector.js';

export interface DetectTask {
  frame: Frame;
  /** performance.timeOrigin + performance.now() at submit: comparable across threads. */
  submittedAt: number;
}

let detector: Promise<Detector> | null = null;

export default async function detect(task: DetectTask): Promise<DetectionResult> {
  if (!detector) {
    detector = Detector.create(Piscina.workerData as DetectorOptions);
    // A failed load is retried by the next task rather than cached forever.
    detector.catch(() => (detector = null));
  }
  const d = await detector;
  // Measured after the (first-task) model load, so a cold worker shows up as queue time.
  const startedAt = performance.timeOrigin + performance.now();
  const { frame } = task;
  const { detections, timings } = await d.detect(frame);
  return {
    camera: frame.camera,
    ts: frame.ts,
    seq: frame.seq,
    detections,
    timings: { queueMs: Math.max(0, startedAt - task.submittedAt), ...timings },
  };
}
