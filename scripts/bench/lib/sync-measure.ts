// Measuring helpers of the sync bench, shared by its child processes: where the time of a
// drain goes (named stages, DuckDB statements by kind, wrapped product methods), a
// process's memory from /proc, and the children's plumbing (stdin commands, stdout lines,
// exit). Wrapping happens on prototypes in the child's own module graph at start, so the
// product code runs unchanged; the cost is two clock reads per call.
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { DuckDBConnection } from '@duckdb/node-api';
import { percentile, round, summarize } from './stats.js';

export interface StageSummary {
  count: number;
  totalMs: number;
  meanMs: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  maxMs: number | null;
}

/** Durations by label; `snapshot` summarises them, `reset` starts over. */
export class Stages {
  private readonly samples = new Map<string, number[]>();

  add(label: string, ms: number): void {
    let list = this.samples.get(label);
    if (!list) this.samples.set(label, (list = []));
    list.push(ms);
  }

  reset(): void {
    this.samples.clear();
  }

  /** Runs `fn` and adds its time (until it settles) under `label`. */
  async time<T>(label: string, fn: () => Promise<T> | T): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      this.add(label, performance.now() - t);
    }
  }

  snapshot(): Record<string, StageSummary> {
    const out: Record<string, StageSummary> = {};
    const entries = [...this.samples].map(([k, v]) => [k, v, v.reduce((a, b) => a + b, 0)] as const).sort((a, b) => b[2] - a[2]);
    for (const [label, list, total] of entries) {
      const s = summarize(list);
      const p90 = percentile(Float64Array.from(list).sort(), 90);
      out[label] = { count: list.length, totalMs: round(total, 1)!, meanMs: round(total / list.length, 2), p50Ms: round(s.p50, 2), p90Ms: round(p90, 2), maxMs: round(s.max, 2) };
    }
    return out;
  }
}

type AsyncFn = (...args: never[]) => Promise<unknown>;

/**
 * Replaces `proto[name]` (an async method) with a wrapper that calls `done(ms, args, result)`
 * when it settles (`result` undefined on a throw). The original runs unchanged.
 */
export function wrapAsync<T extends object>(proto: T, name: string, done: (ms: number, args: unknown[], result: unknown, self: unknown) => void): void {
  const table = proto as unknown as Record<string, AsyncFn>;
  const original = table[name];
  if (typeof original !== 'function') throw new Error(`cannot wrap ${name}: not a method`);
  table[name] = async function (this: unknown, ...args: never[]) {
    const t = performance.now();
    let result: unknown;
    try {
      result = await original.apply(this, args);
      return result;
    } finally {
      done(performance.now() - t, args, result, this);
    }
  } as AsyncFn;
}

/**
 * Times every DuckDB statement of this process (runAndReadAll and friends go through
 * DuckDBConnection.run) under the label `classify` gives its SQL; null skips it.
 */
export function timeDuckDb(stages: Stages, classify: (sql: string) => string | null): void {
  wrapAsync(DuckDBConnection.prototype, 'run', (ms, args) => {
    const label = typeof args[0] === 'string' ? classify(args[0]) : null;
    if (label) stages.add(label, ms);
  });
}

/** VmRSS and VmHWM (bytes) of a process ('self' for this one); null if unreadable. */
export function procMemory(pid: number | 'self'): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const m = { rss: kb('VmRSS'), hwm: kb('VmHWM') };
    return Number.isFinite(m.rss) ? m : null;
  } catch {
    return null;
  }
}

export const mb = (bytes: number | null | undefined) => (bytes === null || bytes === undefined || !Number.isFinite(bytes) ? null : round(bytes / 2 ** 20, 1));

/** This process's CPU (all threads), main-thread busy share and wall time since `start()`. */
export class ProcessWindow {
  private t0 = 0;
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  private elu0 = performance.eventLoopUtilization();
  private peakRss = 0;
  private timer: NodeJS.Timeout | null = null;

  start(sampleEveryMs: number): void {
    this.t0 = performance.now();
    this.cpu0 = process.cpuUsage();
    this.elu0 = performance.eventLoopUtilization();
    this.peakRss = process.memoryUsage.rss();
    this.timer = setInterval(() => (this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss())), sampleEveryMs);
    this.timer.unref();
  }

  get startedAt(): number {
    return this.t0;
  }

  /** Figures from start() to `end` (a performance.now() value, default now). */
  close(end = performance.now()): WindowFigures {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const seconds = (end - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const elu = performance.eventLoopUtilization(this.elu0);
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
    const mem = procMemory('self');
    return {
      seconds,
      cpuSeconds,
      cpuPercent: round((100 * cpuSeconds) / seconds, 0)!,
      mainThreadBusyPercent: round(100 * elu.utilization, 0)!,
      peakRssSampledMB: mb(this.peakRss)!,
      vmHwmMB: mb(mem?.hwm),
      heapUsedMB: mb(process.memoryUsage().heapUsed)!,
    };
  }
}

export interface WindowFigures {
  seconds: number;
  /** User + system CPU of the whole process (all threads) in the window. */
  cpuSeconds: number;
  /** 100 = one core busy for the whole window. */
  cpuPercent: number;
  mainThreadBusyPercent: number;
  /** RSS sampled every ~100 ms in the window. */
  peakRssSampledMB: number;
  /** The process's RSS high-water mark over its whole life (start included). */
  vmHwmMB: number | null;
  heapUsedMB: number;
}

/** Reads stdin lines (commands from the bench) and calls `on` for each. */
export function onStdinLines(on: (line: string) => void): void {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) on(line);
    }
  });
}

/** Prints one protocol line on stdout (`<tag> <json>`); logs go to stderr. */
export function say(tag: string, value?: unknown): void {
  process.stdout.write(value === undefined ? `${tag}\n` : `${tag} ${JSON.stringify(value)}\n`);
}

/**
 * The stdin commands of a measured server (the cloud, the jsonl receiver): `reset` (start a
 * measuring window: stages and socket bytes from zero), `mark` (the drain starts: main-thread
 * busy share from here) and `stats` (`stats {mainThreadBusyPercent, split, socketBytes}`:
 * the bytes `server`'s sockets read — and wrote, with `withSent` — since the reset, HTTP
 * headers included). Each is answered with a line of its name.
 */
export function answerCommands(stages: Stages, server: Server, withSent: boolean): void {
  const sockets = new Map<Socket, { read: number; written: number }>();
  let closed = { read: 0, written: 0 };
  server.on('connection', (s: Socket) => {
    sockets.set(s, { read: 0, written: 0 });
    s.once('close', () => {
      const base = sockets.get(s);
      if (base) closed = { read: closed.read + s.bytesRead - base.read, written: closed.written + s.bytesWritten - base.written };
      sockets.delete(s);
    });
  });
  let elu0 = performance.eventLoopUtilization();
  onStdinLines((line) => {
    if (line === 'mark') {
      elu0 = performance.eventLoopUtilization();
      say('mark');
    } else if (line === 'reset') {
      stages.reset();
      closed = { read: 0, written: 0 };
      for (const s of sockets.keys()) sockets.set(s, { read: s.bytesRead, written: s.bytesWritten });
      say('reset');
    } else if (line === 'stats') {
      let read = closed.read;
      let written = closed.written;
      for (const [s, base] of sockets) {
        read += s.bytesRead - base.read;
        written += s.bytesWritten - base.written;
      }
      const socketBytes = withSent ? { received: read, sent: written } : { received: read };
      say('stats', { mainThreadBusyPercent: Math.round(100 * performance.eventLoopUtilization(elu0).utilization), split: stages.snapshot(), socketBytes });
    }
  });
}

/** On the first SIGTERM or SIGINT: `close()`, then exit 0 (1, with the error on stderr, if it fails). */
export function exitOnSignal(close: () => Promise<unknown>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`close failed: ${err.stack ?? String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * Runs a child's `main`. If it fails: an `error <first line>` line on stdout, the stack on
 * stderr, exit 1. If it returns: exit 0 when `exitWhenDone` (a server keeps running instead).
 */
export function runMain(main: () => Promise<void>, exitWhenDone: boolean): void {
  main().then(
    () => {
      if (exitWhenDone) process.exit(0);
    },
    (err: Error) => {
      say(`error ${(err.message ?? String(err)).split('\n')[0]}`);
      process.stderr.write(`${err.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
