// ONNX Runtime as the detector backend (backend.ts).
import * as ort from 'onnxruntime-node';
import type { DetectorBackend, ModelSession } from './backend.js';

/** Session options every detector session uses (the detect bench's bare baseline too). */
export function onnxSessionOptions(intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: intraOpThreads,
    // Sequential mode runs no inter-op pool; 1 keeps ORT from sizing one to the machine.
    interOpNumThreads: 1,
    // Measured per session on yolov8n_int8: 82 MB instead of 105 MB after a few runs, same speed.
    enableMemPattern: false,
  };
}

export const onnxBackend: DetectorBackend = {
  name: 'onnxruntime',
  async open(file, opts): Promise<ModelSession> {
    const session = await ort.InferenceSession.create(file, onnxSessionOptions(opts.intraOpThreads));
    const inputName = session.inputNames[0];
    const outputName = session.outputNames[0];
    return {
      inputMetadata: session.inputMetadata,
      outputMetadata: session.outputMetadata,
      async run(input, dims) {
        const outputs = await session.run({ [inputName]: new ort.Tensor('float32', input, dims) });
        const out = outputs[outputName];
        if (!out || !(out.data instanceof Float32Array)) throw new Error(`output "${outputName}" is not float32 data`);
        return { data: out.data, dispose: () => out.dispose() };
      },
      release: () => session.release(),
    };
  },
};
