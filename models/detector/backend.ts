// The one seam between detection and an inference runtime: open a model file, say what
// its input and output tensors are, run one float32 input. ONNX Runtime (onnx.ts) is the
// one we ship; another runtime is one more file implementing DetectorBackend.

/** One input or output as the model declares it (a non-tensor one cannot feed a detector). */
export type TensorInfo =
  | {
      name: string;
      isTensor: true;
      /** Element type: 'float32', 'uint8', ... */
      type: string;
      /** Dimensions; a string is a symbolic (dynamic) one. */
      shape: readonly (number | string)[];
    }
  | { name: string; isTensor: false };

export interface ModelMetadata {
  readonly inputMetadata: readonly TensorInfo[];
  readonly outputMetadata: readonly TensorInfo[];
}

/** A loaded model. Used by one thread at a time. */
export interface ModelSession extends ModelMetadata {
  /** Runs `input` (NCHW float32 of `dims`) and returns the first output's data; call dispose() when read. */
  run(input: Float32Array, dims: readonly number[]): Promise<{ data: Float32Array; dispose(): void }>;
  release(): Promise<void>;
}

export interface DetectorBackend {
  readonly name: string;
  /** Loads a model; `intraOpThreads` bounds the runtime's threads for this session. */
  open(file: string, opts: { intraOpThreads: number }): Promise<ModelSession>;
}
