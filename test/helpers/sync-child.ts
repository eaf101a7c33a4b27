// Child processes for the crash tests of sync: `outpost run` / `outpost cloud` spawned from
// dist/, kill -9 that waits for the exit, and a QoS1 publisher that survives the broker
// going away under it (it returns what was acknowledged until then).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { PACKAGE_ROOT } from '../../config/site.js';

export interface Child {
  proc: ChildProcess;
  /** The last few KiB of the child's stderr (for a failure message). */
  stderr(): string;
}

const STDERR_KEEP = 8192;

/** `node dist/gateway/cli.js <args>` with an empty NODE_OPTIONS and warn-level logs. */
export function spawnCli(args: string[]): Child {
  const proc = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/gateway/cli.js'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', OUTPOST_LOG_LEVEL: 'warn' },
  });
  let tail = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s: string) => {
    tail = (tail + s).slice(-STDERR_KEEP);
  });
  return { proc, stderr: () => tail };
}

export const alive = (c: ChildProcess | null | undefined): boolean => !!c && c.exitCode === null && c.signalCode === null;

/** Resolves with the exit code (null when killed by a signal), or rejects after `timeoutMs`. */
export function exited(child: ChildProcess, timeoutMs = 15_000): Promise<number | null> {
  if (!alive(child)) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** kill -9 and wait until the process is gone (its DuckDB file lock with it). */
export async function kill9(child: ChildProcess | null | undefined): Promise<void> {
  if (!child || !alive(child)) return;
  child.kill('SIGKILL');
  await exited(child, 10_000);
}

/** Rejects when `p` has not settled within `ms` (a child that accepted a connection and then hung). */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs every step even when one fails (a tap teardown that rejects skips the ones after it). */
export async function cleanup(...steps: (() => unknown)[]): Promise<void> {
  for (const step of steps) {
    try {
      await step();
    } catch {
      /* best effort: the next step still runs */
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const randomInt = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

export interface Publisher {
  /** Reading numbers whose PUBACK arrived. */
  acked: number[];
  /** How many numbers were used (sent or not): the next publisher starts after them. */
  sent(): number;
  /** Resolves when `count` numbers were acknowledged, the connection went away, or on stop(). */
  done: Promise<void>;
  stop(): void;
}

/**
 * Publishes `{"n": <number>}` on devices/<site>/z/counter/telemetry with QoS1, numbers from
 * `first`, 64 in flight, until `count` are acknowledged. A broker killed under it ends it
 * (no error): numbers in flight then are neither acked nor reused.
 */
export function publishNumbers(port: number, site: string, first: number, count: number, timeoutMs = 20_000): Publisher {
  const acked: number[] = [];
  let next = first;
  let inflight = 0;
  let finished = false;
  let connected = false;
  let resolveDone!: () => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000, clientId: `sync-crash-${first}` });
  const finish = (err?: Error) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    client.end(true);
    if (err) rejectDone(err);
    else resolveDone();
  };
  const timer = setTimeout(
    () => finish(connected ? undefined : new Error(`MQTT publisher: no connection to 127.0.0.1:${port}`)),
    timeoutMs,
  );
  const topic = `devices/${site}/z/counter/telemetry`;
  const pump = () => {
    while (!finished && inflight < 64 && next - first < count) {
      const n = next++;
      inflight++;
      client.publish(topic, JSON.stringify({ n }), { qos: 1 }, (err) => {
        inflight--;
        if (finished) return;
        if (err) return finish(); // the gateway went away
        acked.push(n);
        if (acked.length >= count) return finish();
        pump();
      });
    }
  };
  client.once('connect', () => {
    connected = true;
    pump();
  });
  client.on('close', () =>
    finish(connected ? undefined : new Error(`MQTT publisher: connection to 127.0.0.1:${port} closed before CONNACK`)),
  );
  client.on('error', (err) => finish(connected ? undefined : err));
  return { acked, sent: () => next - first, done, stop: () => finish() };
}
