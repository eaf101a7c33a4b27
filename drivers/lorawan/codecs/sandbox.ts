// User payload codecs (ChirpStack v4 / TTN form: `function decodeUplink(input)`, optional
// `function encodeDownlink(input)`) run in QuickJS compiled to WebAssembly; SANDBOX.md says
// why. The codec sees plain JavaScript only: no require, process, timers, fs or network.
// Limits: a deadline checked by QuickJS's interrupt handler plus a hard watchdog stop
// (engine.ts), and a memory cap on the codec's own wasm memory. A codec that hits one is
// reported with a CodecError and rebuilt for its next call; other codecs are not touched.
import { readFile } from 'node:fs/promises';
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten-core';
import { createEngine, HardTimeout, memoryCap, refillSpare, takeSpare, withHardDeadline, type Engine } from './engine.js';
import { HARNESS } from './harness.js';
import { CodecError, type CodecLimits, type DecodeResult, type EncodeResult, type PayloadCodec, type UplinkInput } from './types.js';
import { MAX_RESULT_CHARS, toDecodeResult, toEncodeResult } from './validate.js';

export * from './types.js';

const MAX_SOURCE_BYTES = 1024 * 1024;
/** QuickJS's C stack limit: far below the wasm stack, so deep recursion is a clean error. */
const MAX_STACK_BYTES = 256 * 1024;

/** The soft deadline's backstop: late enough that the interrupt handler normally wins. */
const hardMs = (softMs: number) => 2 * softMs + 20;

/** One QuickJS runtime with the codec evaluated in it, and the handles we call. */
interface Loaded {
  rt: QuickJSRuntime;
  ctx: QuickJSContext;
  handles: QuickJSHandle[];
  up: QuickJSHandle;
  down: QuickJSHandle;
  decode: QuickJSHandle;
  encode: QuickJSHandle | undefined;
}

class QuickJsCodec implements PayloadCodec {
  readonly encodeDownlink?: (data: Record<string, unknown>, fPort?: number) => EncodeResult;
  private engine: Engine | undefined;
  private loaded: Loaded | undefined;
  private deadline = Infinity;
  private interrupted = false;
  private closed = false;
  private readonly maxBytes: number;

  constructor(
    readonly name: string,
    private readonly source: string,
    private readonly limits: CodecLimits,
    engine: Engine,
  ) {
    this.maxBytes = memoryCap(limits.memoryBytes);
    this.engine = engine;
    this.loaded = this.load(Math.max(1000, limits.timeoutMs));
    if (this.loaded.encode) this.encodeDownlink = (data, fPort) => this.encode(data, fPort);
  }

  decodeUplink(input: UplinkInput): DecodeResult {
    const s = this.ready();
    const b = input.bytes;
    const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    const text = this.call('decodeUplink', s, s.up, [s.decode], (ctx) => [
      ctx.newArrayBuffer(buf),
      ctx.newNumber(input.fPort),
      ctx.newNumber(input.recvTime.getTime()),
    ]);
    return toDecodeResult(this.name, text);
  }

  private encode(data: Record<string, unknown>, fPort?: number): EncodeResult {
    let json: string | undefined;
    try {
      json = JSON.stringify(data);
    } catch {
      // cycles, BigInt: the caller's mistake, reported like a codec's own errors
    }
    if (json === undefined || json.length > MAX_RESULT_CHARS) {
      return { bytes: new Uint8Array(0), warnings: [], errors: ['downlink data is not JSON of at most 64 KiB'] };
    }
    const s = this.ready();
    if (!s.encode) throw new CodecError('load', `codec ${this.name}: encodeDownlink disappeared on reload`);
    const text = this.call('encodeDownlink', s, s.down, [s.encode], (ctx) => [
      ctx.newString(json),
      fPort === undefined ? ctx.undefined : ctx.newNumber(fPort),
    ]);
    return toEncodeResult(this.name, text);
  }

  close(): void {
    this.closed = true;
    this.unload();
    this.engine = undefined;
  }

  /** The loaded codec, rebuilt if the last call had to throw it (or its engine) away. */
  private ready(): Loaded {
    if (this.closed) throw new CodecError('load', `codec ${this.name}: closed`);
    if (this.loaded) return this.loaded;
    this.engine ??= takeSpare(this.maxBytes);
    if (!this.engine) throw new CodecError('load', `codec ${this.name}: its engine is being replaced after a failure; try again shortly`);
    this.loaded = this.load(Math.max(1000, this.limits.timeoutMs));
    return this.loaded;
  }

  /** Evaluates the harness and the codec source in a fresh runtime of the current engine. */
  private load(timeoutMs: number): Loaded {
    const engine = this.engine!;
    const rt = engine.wasm.newRuntime();
    rt.setMemoryLimit(this.maxBytes);
    rt.setMaxStackSize(MAX_STACK_BYTES);
    rt.setInterruptHandler(() => {
      if (performance.now() <= this.deadline) return false;
      this.interrupted = true;
      return true;
    });
    const ctx = rt.newContext();
    const handles: QuickJSHandle[] = [];
    const fail = (why: string): never => {
      this.dispose(rt, ctx, handles);
      throw new CodecError('load', `codec ${this.name}: ${why}`);
    };
    // Everything here runs under the load deadline; a hard stop loses the engine.
    const guarded = <T>(run: () => T): T => {
      this.interrupted = false;
      this.deadline = performance.now() + timeoutMs;
      try {
        return withHardDeadline(hardMs(timeoutMs), run);
      } catch (err) {
        this.engine = undefined;
        throw new CodecError('load', `codec ${this.name}: the engine failed while loading: ${(err as Error).message}`);
      } finally {
        this.deadline = Infinity;
      }
    };
    const harnessResult = guarded(() => ctx.evalCode(HARNESS.replace('%MAX%', String(MAX_RESULT_CHARS)), 'codec-harness.js'));
    if (harnessResult.error) {
      harnessResult.error.dispose();
      fail('the engine could not start its harness');
    }
    const harness = ctx.unwrapResult(harnessResult);
    handles.push(harness);
    const get = (obj: QuickJSHandle, key: string): QuickJSHandle => {
      const h = ctx.getProp(obj, key);
      handles.push(h);
      return h;
    };
    const describe = get(harness, 'describe');
    const result = guarded(() => {
      const r = ctx.evalCode(this.source, this.name);
      if (!r.error) return (r.value.dispose(), undefined);
      if (this.interrupted) return (r.error.dispose(), `its top-level code ran past ${timeoutMs} ms`);
      // The codec's own error object: described inside the engine, under the deadline.
      const d = ctx.callFunction(describe, ctx.undefined, r.error);
      r.error.dispose();
      const text = !d.error && ctx.typeof(d.value) === 'string' ? ctx.getString(d.value) : 'Tan error that could not be described';
      (d.error ?? d.value).dispose();
      return `failed to load: ${text.slice(1)}`;
    });
    if (result !== undefined) fail(result);
    const up = get(harness, 'up');
    const down = get(harness, 'down');
    const decode = get(ctx.global, 'decodeUplink');
    if (ctx.typeof(decode) !== 'function') fail('defines no function decodeUplink(input)');
    const encode = get(ctx.global, 'encodeDownlink');
    return { rt, ctx, handles, up, down, decode, encode: ctx.typeof(encode) === 'function' ? encode : undefined };
  }

  /**
   * One call into the harness (`harness.up(fn, ...args)` or `.down`). Its answer is a
   * string whose first letter says what happened: R result JSON, B bad result, T threw,
   * M out of memory (or stack).
   */
  private call(
    fn: string,
    s: Loaded,
    entry: QuickJSHandle,
    fixed: QuickJSHandle[],
    make: (ctx: QuickJSContext) => QuickJSHandle[],
  ): string {
    const { ctx } = s;
    const args = make(ctx);
    const soft = this.limits.timeoutMs;
    const hard = hardMs(soft);
    let answer: string | undefined;
    let failed: CodecError | undefined;
    this.interrupted = false;
    this.deadline = performance.now() + soft;
    try {
      answer = withHardDeadline(hard, () => {
        const r = ctx.callFunction(entry, ctx.undefined, ...fixed, ...args);
        if (r.error) {
          r.error.dispose();
          return undefined;
        }
        const text = ctx.typeof(r.value) === 'string' ? ctx.getString(r.value) : 'Bharness answered no string';
        r.value.dispose();
        return text;
      });
    } catch (err) {
      // Hard stop or a trap inside the engine: its heap can't be trusted any more.
      this.loaded = undefined;
      this.engine = undefined;
      const hardStop = err instanceof HardTimeout;
      const reason = hardStop ? 'timeout' : err instanceof RangeError ? 'memory' : 'threw';
      const what = hardStop ? `ran past ${hard} ms (stopped hard)` : `crashed the engine: ${(err as Error).message}`;
      throw new CodecError(reason, `codec ${this.name}: ${fn} ${what}; its engine is replaced`);
    } finally {
      this.deadline = Infinity;
    }
    for (const a of args) if (a.alive && a !== ctx.undefined) a.dispose();
    if (answer === undefined) {
      // Only the interrupt or resource exhaustion escape the harness's own catch.
      failed = this.interrupted
        ? new CodecError('timeout', `codec ${this.name}: ${fn} ran past ${soft} ms`)
        : new CodecError('memory', `codec ${this.name}: ${fn} ran out of memory`);
    } else if (answer[0] === 'M') {
      const what = answer.slice(1) === 'stack overflow' ? 'overflowed its stack' : `ran out of memory (limit ${this.maxBytes} bytes)`;
      failed = new CodecError('memory', `codec ${this.name}: ${fn} ${what}`);
    } else if (answer[0] === 'T') {
      failed = new CodecError('threw', `codec ${this.name}: ${fn} threw ${answer.slice(1)}`);
    } else if (answer[0] === 'B') {
      failed = new CodecError('bad_result', `codec ${this.name}: ${fn} ${answer.slice(1)}`);
    } else if (s.rt.hasPendingJob()) {
      failed = new CodecError('bad_result', `codec ${this.name}: ${fn} left promise jobs behind; codecs must be synchronous`);
    }
    if (failed) {
      // A fresh runtime next time for anything that may have left state behind.
      if (failed.reason !== 'threw' && failed.reason !== 'bad_result') this.unload();
      else if (s.rt.hasPendingJob()) this.unload();
      throw failed;
    }
    return answer!.slice(1);
  }

  private unload(): void {
    const s = this.loaded;
    this.loaded = undefined;
    if (s && this.engine) this.dispose(s.rt, s.ctx, s.handles);
  }

  private dispose(rt: QuickJSRuntime, ctx: QuickJSContext, handles: QuickJSHandle[]): void {
    try {
      for (const h of handles) if (h.alive) h.dispose();
      ctx.dispose();
      rt.dispose();
    } catch {
      // A runtime that can't be freed means a damaged heap: drop the whole engine.
      this.engine = undefined;
    }
  }
}

/** Reads and evaluates a codec file; throws CodecError('load') when it can't be used. */
export async function loadCodec(file: string, limits: CodecLimits): Promise<PayloadCodec> {
  let source: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_SOURCE_BYTES) throw new Error(`${buf.length} bytes is over ${MAX_SOURCE_BYTES}`);
    source = buf.toString('utf8');
  } catch (err) {
    throw new CodecError('load', `codec ${file}: cannot read it: ${(err as Error).message}`);
  }
  const maxBytes = memoryCap(limits.memoryBytes);
  let engine: Engine;
  try {
    [engine] = await Promise.all([takeSpare(maxBytes) ?? createEngine(maxBytes), refillSpare(maxBytes)]);
  } catch (err) {
    throw new CodecError('load', `codec ${file}: cannot start the engine: ${(err as Error).message}`);
  }
  return new QuickJsCodec(file, source, limits, engine);
}
