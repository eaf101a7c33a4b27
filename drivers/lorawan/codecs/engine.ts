// QuickJS engines for user codecs. Each codec gets its own WebAssembly instance of the
// QuickJS build (the compiled module is shared), with an imported memory whose `maximum`
// is the codec's memory limit: QuickJS's own setMemoryLimit does not add up allocation
// sizes in this build (quickjs-emscripten #271), so the wasm memory cap is the real bound.
// One spare instance per memory size is kept ready, so a codec whose engine had to be
// thrown away gets a new one synchronously on its next call.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import vm from 'node:vm';
import releaseSyncImport from '@jitl/quickjs-wasmfile-release-sync';
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSSyncVariant, type QuickJSWASMModule } from 'quickjs-emscripten-core';

// The project's lib settings carry no WebAssembly types: the few members used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  Instance: new (module: object, imports: object) => WasmInstance;
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

// The package's types are CommonJS-shaped while Node loads its ESM build: unwrap either.
function syncVariant(m: unknown): QuickJSSyncVariant {
  const v = m as { type?: unknown; default?: unknown };
  return (v.type === 'sync' ? v : v.default) as QuickJSSyncVariant;
}
const RELEASE_SYNC = syncVariant(releaseSyncImport);

const PAGE = 64 * 1024;
/** The build's initial memory (256 pages, its data and C stack included): the smallest cap. */
export const MIN_MEMORY_BYTES = 256 * PAGE;

export interface Engine {
  readonly wasm: QuickJSWASMModule;
  readonly memory: WasmMemory;
  readonly maxBytes: number;
}

let compiled: Promise<object> | undefined;

function compiledModule(): Promise<object> {
  compiled ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
    return Wasm.compile(await readFile(path));
  })();
  return compiled;
}

/** The wasm memory cap for a limit: whole pages, never below the build's initial memory. */
export function memoryCap(memoryBytes: number): number {
  return Math.max(MIN_MEMORY_BYTES, Math.ceil(memoryBytes / PAGE) * PAGE);
}

export async function createEngine(maxBytes: number): Promise<Engine> {
  const module = await compiledModule();
  const memory = new Wasm.Memory({ initial: MIN_MEMORY_BYTES / PAGE, maximum: maxBytes / PAGE });
  const variant = newVariant(RELEASE_SYNC, {
    wasmMemory: memory,
    emscriptenModule: {
      // Synchronous, so a failure rejects the loader's promise instead of escaping as an
      // unhandled rejection (what the async `wasmModule` path does).
      instantiateWasm(imports: object, onSuccess: (instance: WasmInstance) => void) {
        const instance = new Wasm.Instance(module, imports);
        onSuccess(instance);
        return instance.exports;
      },
    },
  });
  return { wasm: await newQuickJSWASMModuleFromVariant(variant), memory, maxBytes };
}

const spares = new Map<number, Engine>();
const filling = new Map<number, Promise<void>>();

/** Makes sure a spare engine of this size exists (or is on its way). */
export function refillSpare(maxBytes: number): Promise<void> {
  if (spares.has(maxBytes)) return Promise.resolve();
  let p = filling.get(maxBytes);
  if (!p) {
    p = createEngine(maxBytes)
      .then((e) => void spares.set(maxBytes, e))
      .finally(() => filling.delete(maxBytes));
    filling.set(maxBytes, p);
  }
  return p;
}

/** A ready engine now, or undefined when the last one was taken moments ago. */
export function takeSpare(maxBytes: number): Engine | undefined {
  const e = spares.get(maxBytes);
  spares.delete(maxBytes);
  // A failed refill leaves no spare; the next take tries again.
  refillSpare(maxBytes).catch(() => {});
  return e;
}

// The hard stop. QuickJS polls its interrupt handler only every ~10k bytecode steps, so a
// loop around a heavy builtin (join, sort, fill over a large array) can run for seconds
// between polls. node:vm's timeout watchdog terminates whatever runs inside the script,
// wasm included; the script only calls back into our own function, no user code runs in it.
const trampoline = vm.createContext({ call: (): unknown => undefined });
const callScript = new vm.Script('call()', { filename: 'codec-watchdog' });

export class HardTimeout extends Error {}

export function withHardDeadline<T>(ms: number, fn: () => T): T {
  const g = trampoline as { call: () => unknown };
  const previous = g.call;
  g.call = fn;
  try {
    return callScript.runInContext(trampoline, { timeout: Math.max(1, Math.ceil(ms)) }) as T;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new HardTimeout(`ran past ${ms} ms`);
    throw err;
  } finally {
    g.call = previous;
  }
}
