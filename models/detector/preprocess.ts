// Frame → model input. ffmpeg already letterboxed the frame and put its bytes in the
// model's channel order, so all that is left is HWC uint8 → CHW float32 with the model's
// pixel scale: one pass over the bytes into a buffer allocated once per detector.
// Each plane is its own view (c0[i] rather than out[p + i]): measured faster in V8.

export class Preprocessor {
  /** The tensor data, reused by every call: consume it before the next call. */
  readonly output: Float32Array;
  private readonly planes: [Float32Array, Float32Array, Float32Array];
  private readonly lut = new Float32Array(256);

  constructor(
    readonly width: number,
    readonly height: number,
    pixelScale: number,
  ) {
    const plane = width * height;
    this.output = new Float32Array(3 * plane);
    this.planes = [this.output.subarray(0, plane), this.output.subarray(plane, 2 * plane), this.output.subarray(2 * plane)];
    // A table lookup gives exactly the float32 the scaled multiply would, without the multiply.
    for (let v = 0; v < 256; v++) this.lut[v] = v * pixelScale;
  }

  /** Fills `output` from `hwc` (width × height × 3 bytes) and returns it. */
  run(hwc: Uint8Array): Float32Array {
    const plane = this.width * this.height;
    if (hwc.length !== plane * 3) throw new Error(`frame has ${hwc.length} bytes, expected ${plane * 3} (${this.width}×${this.height}×3)`);
    if (LITTLE_ENDIAN && hwc.byteOffset % 4 === 0 && plane % 4 === 0) this.words(hwc, plane);
    else this.bytes(hwc, plane);
    return this.output;
  }

  /** 4 pixels = 3 little-endian 32-bit words per step: measured 1.3 ms vs 2.5 ms byte-wise at 640×640. */
  private words(hwc: Uint8Array, plane: number): void {
    const w = new Uint32Array(hwc.buffer, hwc.byteOffset, (plane * 3) >>> 2);
    const [c0, c1, c2] = this.planes; // in the frame's (= the model's) channel order
    const lut = this.lut;
    for (let i = 0, k = 0; i < plane; i += 4, k += 3) {
      const w0 = w[k];
      const w1 = w[k + 1];
      const w2 = w[k + 2];
      c0[i] = lut[w0 & 255]!;
      c1[i] = lut[(w0 >>> 8) & 255]!;
      c2[i] = lut[(w0 >>> 16) & 255]!;
      c0[i + 1] = lut[w0 >>> 24]!;
      c1[i + 1] = lut[w1 & 255]!;
      c2[i + 1] = lut[(w1 >>> 8) & 255]!;
      c0[i + 2] = lut[(w1 >>> 16) & 255]!;
      c1[i + 2] = lut[w1 >>> 24]!;
      c2[i + 2] = lut[w2 & 255]!;
      c0[i + 3] = lut[(w2 >>> 8) & 255]!;
      c1[i + 3] = lut[(w2 >>> 16) & 255]!;
      c2[i + 3] = lut[w2 >>> 24]!;
    }
  }

  /** Any alignment or size. */
  private bytes(hwc: Uint8Array, plane: number): void {
    const [c0, c1, c2] = this.planes;
    const lut = this.lut;
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      c0[i] = lut[hwc[j]]!;
      c1[i] = lut[hwc[j + 1]]!;
      c2[i] = lut[hwc[j + 2]]!;
    }
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
