// The payload codec contract shared by the built-in LPP codec and sandboxed user codecs
// (ChirpStack v4 / TTN form). Kept apart from sandbox.ts so that lpp.ts never loads the
// QuickJS engine; sandbox.ts re-exports all of it for the driver.

export interface CodecLimits {
  /** Per call. The engine checks it at its interrupt polls; a hard stop follows at 2 × + 20 ms. */
  timeoutMs: number;
  /** The codec's whole WebAssembly memory (heap, stack, engine data); 16 MiB at least. */
  memoryBytes: number;
}

export const DEFAULT_LIMITS: CodecLimits = { timeoutMs: 50, memoryBytes: 16 * 1024 * 1024 };

export interface UplinkInput {
  bytes: Uint8Array;
  fPort: number;
  recvTime: Date;
}

export interface DecodeResult {
  data: Record<string, unknown>;
  warnings: string[];
  errors: string[];
}

export interface EncodeResult {
  bytes: Uint8Array;
  fPort?: number;
  warnings: string[];
  errors: string[];
}

export interface PayloadCodec {
  /** 'lpp' or the codec file's path. */
  readonly name: string;
  /** Throws CodecError. */
  decodeUplink(input: UplinkInput): DecodeResult;
  /** Throws CodecError; absent when the codec has none. */
  encodeDownlink?(data: Record<string, unknown>, fPort?: number): EncodeResult;
  close(): void;
}

export type CodecErrorReason = 'timeout' | 'memory' | 'threw' | 'bad_result' | 'load';

/** A codec call (or load) that failed; the message names the codec and what happened. */
export class CodecError extends Error {
  constructor(
    readonly reason: CodecErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'CodecError';
  }
}

/** The largest LoRaWAN application payload (DR with the biggest N, e.g. EU868 SF7). */
export const MAX_DOWNLINK_BYTES = 242;
