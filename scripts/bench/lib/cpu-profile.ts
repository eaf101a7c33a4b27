// Where the main thread's time goes during a bench window: V8's sampling profiler (via
// node:inspector, in this process) summarised by component — the DuckDB appender, the
// store writer, the Modbus driver, socket writes, metrics, GC, idle. Time in a native
// function (an N-API call such as DuckDB's append_* or flush) counts for the JS frame
// that called it. It samples the JS thread only; DuckDB's own worker threads show up in
// process CPU, not here.
import { Session } from 'node:inspector/promises';
import type { Profiler, Runtime } from 'node:inspector';
import { round } from './stats.js';

export interface ProfileSummary {
  sampledMs: number;
  /** Share (%) of sampled time per component, largest first; idle included. */
  byComponent: Record<string, number>;
  /** Busiest functions by self time, excluding idle. */
  topFunctions: { fn: string; percent: number }[];
}

const SAMPLING_INTERVAL_US = 500;
const TOP_FUNCTIONS = 15;
/** How far up the stack a native frame looks for the JS frame that called it. */
const MAX_CALLER_DEPTH = 64;

/** Frames without a script that are a component of their own. */
function specialComponent(frame: Runtime.CallFrame): string | null {
  const fn = frame.functionName;
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'v8 (program)';
  if (fn === '(root)') return 'v8 (program)';
  if (/^write(Buffer|v|Utf8String|Latin1String|AsciiString|Ucs2String)$/.test(fn)) return 'socket writes';
  if (fn === 'runMicrotasks') return 'promises (microtasks)';
  return null;
}

/** Component of a frame with a script URL. */
function component(frame: Runtime.CallFrame): string {
  const { url } = frame;
  if (url.includes('/@duckdb/')) return 'duckdb (node-api)';
  if (url.includes('/gateway/store/')) return 'store writer';
  if (url.includes('/drivers/modbus/')) return 'modbus driver';
  if (url.includes('/prom-client/')) return 'metrics (prom-client)';
  if (url.includes('/scripts/bench/')) return 'bench';
  if (url === 'node:inspector') return 'profiler (overhead)';
  if (url.includes('/gateway/')) return 'gateway (other)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `package: ${pkg[1]}`;
  if (url.startsWith('node:internal/timers')) return 'node timers';
  if (/^node:(net|internal\/(stream|net|streams))/.test(url)) return 'node net/streams';
  if (url.startsWith('node:internal/process/task_queues')) return 'promises (microtasks)';
  if (url.startsWith('node:')) return 'node (other)';
  return 'other';
}

function shortUrl(url: string): string {
  return url.replace(/^.*\/node_modules\//, '').replace(/^.*\/dist\//, '').replace(/^file:\/\//, '');
}

function frameName(f: Runtime.CallFrame): string {
  return `${f.functionName || '(anonymous)'}${f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`;
}

export function summarize(profile: Profiler.Profile): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Component and function name per node; a native frame takes its JS caller's component.
  const attribution = new Map<number, { component: string; fn: string }>();
  const attribute = (id: number): { component: string; fn: string } => {
    const known = attribution.get(id);
    if (known) return known;
    const frame = nodes.get(id)!.callFrame;
    let result = { component: specialComponent(frame) ?? '', fn: frameName(frame) };
    if (!result.component && frame.url) result.component = component(frame);
    if (!result.component) {
      let caller = parent.get(id);
      for (let depth = 0; caller !== undefined && depth < MAX_CALLER_DEPTH; depth++) {
        const f = nodes.get(caller)!.callFrame;
        if (f.url) {
          result = { component: component(f), fn: `${frame.functionName || '(native)'} ← ${frameName(f)}` };
          break;
        }
        caller = parent.get(caller);
      }
      if (!result.component) result.component = 'native (no JS caller)';
    }
    attribution.set(id, result);
    return result;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const byComponent = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    const us = Math.max(0, deltas[i] ?? 0);
    if (!nodes.has(id)) continue;
    totalUs += us;
    const { component: c, fn } = attribute(id);
    byComponent.set(c, (byComponent.get(c) ?? 0) + us);
    if (c !== 'idle') byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const pct = (us: number) => (totalUs > 0 ? round((100 * us) / totalUs, 1)! : 0);
  return {
    sampledMs: Math.round(totalUs / 1000),
    byComponent: Object.fromEntries(
      [...byComponent]
        .sort((a, b) => b[1] - a[1])
        .filter(([, us]) => pct(us) >= 0.1)
        .map(([k, us]) => [k, pct(us)]),
    ),
    topFunctions: [...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP_FUNCTIONS)
      .map(([fn, us]) => ({ fn, percent: pct(us) })),
  };
}

/** A running profile of this process's main thread; `stop` is safe to call twice. */
export class CpuProfile {
  private stopped = false;

  private constructor(private readonly session: Session) {}

  static async start(): Promise<CpuProfile> {
    const session = new Session();
    session.connect();
    try {
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
      await session.post('Profiler.start');
    } catch (err) {
      session.disconnect();
      throw err;
    }
    return new CpuProfile(session);
  }

  async stop(): Promise<ProfileSummary | null> {
    if (this.stopped) return null;
    this.stopped = true;
    try {
      const { profile } = await this.session.post('Profiler.stop');
      return summarize(profile);
    } finally {
      this.session.disconnect();
    }
  }
}
