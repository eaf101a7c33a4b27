// The sync bench's child processes, seen from the bench: the cloud API (lib/sync-cloud.ts),
// the gateway (lib/sync-gateway.ts), and the jsonl baseline's sender and receiver
// (lib/sync-jsonl-*.ts). Each speaks in stdout lines `<tag> <json>`; CPU and memory of the
// ones the bench measures from outside come from /proc. drain() runs one sender against one
// server and measures both, for either scenario.
import { fileURLToPath } from 'node:url';
import { PeerChild, PeerHandle } from './child.js';
import { MachineCpu } from './rules-diag.js';
import { round } from './stats.js';
import { mb, procMemory, type StageSummary, type WindowFigures } from './sync-measure.js';
import { GATEWAY_HEAP_MB, SAMPLE_EVERY_MS } from './sync-setup.js';

const script = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));
/** Starting a child (node, DuckDB, fastify) and a stats answer: generous, for a loaded 2-core box. */
const START_TIMEOUT_MS = 30_000;
const ANSWER_TIMEOUT_MS = 10_000;
/** Time allowed on top of --max-seconds for a sender to report (start-up, stats). */
const REPORT_GRACE_MS = 60_000;

/**
 * Waits for the child's next stdout line starting with `<tag>` and returns the rest (the
 * JSON after it, parsed, or the raw text when `raw`); rejects on `error …`, on exit, after
 * `timeoutMs`.
 */
export function waitLine<T>(child: PeerChild, name: string, tag: string, timeoutMs: number, raw = false): Promise<T> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`${name}: ${why}${child.stderrSuffix()}`));
    };
    const timer = setTimeout(() => fail(`no "${tag}" after ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    const onLine = (l: string) => {
      if (l === tag || l.startsWith(`${tag} `)) {
        cleanup();
        const rest = l.slice(tag.length + 1);
        try {
          resolve((raw ? rest : rest === '' ? undefined : JSON.parse(rest)) as T);
        } catch (err) {
          reject(new Error(`${name}: bad "${tag}" line: ${(err as Error).message}`));
        }
      } else if (l.startsWith('error ')) fail(l.slice('error '.length));
    };
    const onExit = () => fail(`exited (${JSON.stringify(child.exitStatus)})`);
    const cleanup = () => {
      clearTimeout(timer);
      child.lines.off('line', onLine);
      child.proc.off('exit', onExit);
    };
    child.lines.on('line', onLine);
    if (child.exitStatus) return onExit();
    child.proc.once('exit', onExit);
  });
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: PeerChild): Promise<void> {
  return child.exitStatus ? Promise.resolve() : new Promise((r) => child.proc.once('exit', () => r()));
}

/** Node with the gateway's heap cap: `node --max-old-space-size=256 <script> …args`. */
function cappedChild(name: string, args: readonly string[], label: string): PeerChild {
  // PeerChild runs `node <first> ...rest`: the flag goes first, the script after it.
  return new PeerChild(`--max-old-space-size=${GATEWAY_HEAP_MB}`, [script(name), ...args], label);
}

/** A child that answers `reset`, `mark` and `stats` on stdin (the cloud, the jsonl receiver). */
export abstract class ServerChild extends PeerHandle {
  constructor(
    child: PeerChild,
    readonly label: string,
  ) {
    super(child);
  }

  memory(): { rss: number; hwm: number } | null {
    return procMemory(this.pid);
  }

  async reset(): Promise<void> {
    const answer = waitLine<void>(this.child, this.label, 'reset', ANSWER_TIMEOUT_MS);
    this.child.send('reset');
    await answer;
  }

  /** The drain starts: the child's main-thread busy share counts from here. */
  async mark(): Promise<void> {
    const answer = waitLine<void>(this.child, this.label, 'mark', ANSWER_TIMEOUT_MS);
    this.child.send('mark');
    await answer;
  }

  async stats<T>(): Promise<T> {
    const answer = waitLine<T>(this.child, this.label, 'stats', ANSWER_TIMEOUT_MS);
    this.child.send('stats');
    return answer;
  }
}

export class CloudChild extends ServerChild {
  url = '';
  adminTokenFile = '';

  static async start(configPath: string): Promise<CloudChild> {
    const cloud = new CloudChild(new PeerChild(script('sync-cloud'), [configPath], 'cloud API'), 'cloud API');
    const ready = waitLine<string>(cloud.child, cloud.label, 'ready', START_TIMEOUT_MS, true);
    try {
      [cloud.url = '', cloud.adminTokenFile = ''] = (await ready).split(' ');
    } catch (err) {
      await cloud.stop();
      throw err;
    }
    return cloud;
  }
}

export class ReceiverChild extends ServerChild {
  port = 0;

  static async start(dir: string): Promise<ReceiverChild> {
    const r = new ReceiverChild(new PeerChild(script('sync-jsonl-receiver'), [dir], 'jsonl receiver'), 'jsonl receiver');
    const ready = waitLine<string>(r.child, r.label, 'ready', START_TIMEOUT_MS, true);
    try {
      r.port = Number(await ready);
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }
}

/** A child that runs once: `started`, then its result line, then exits (the gateway, the jsonl sender). */
export class RunChild extends PeerHandle {
  private constructor(
    child: PeerChild,
    readonly label: string,
    private readonly resultTag: string,
  ) {
    super(child);
  }

  static gateway(siteYaml: string, lastSeq: number, maxSeconds: number): RunChild {
    return new RunChild(cappedChild('sync-gateway', [siteYaml, String(lastSeq), String(maxSeconds)], 'gateway'), 'gateway', 'drained');
  }

  static sender(dbPath: string, url: string, batch: number, lastSeq: number, maxSeconds: number): RunChild {
    return new RunChild(
      cappedChild('sync-jsonl-sender', [dbPath, url, String(batch), String(lastSeq), String(maxSeconds)], 'jsonl sender'),
      'jsonl sender',
      'done',
    );
  }

  started<T>(): Promise<T> {
    return waitLine<T>(this.child, this.label, 'started', START_TIMEOUT_MS);
  }

  result<T>(timeoutMs: number): Promise<T> {
    return waitLine<T>(this.child, this.label, this.resultTag, timeoutMs);
  }

  exited(): Promise<void> {
    return exited(this.child);
  }
}

/** Peak RSS of some processes, sampled from /proc (VmHWM is the exact peak over a whole life). */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  readonly peak = new Map<number, number>();

  constructor(private readonly pids: readonly number[]) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private sample(): void {
    for (const pid of this.pids) {
      const m = procMemory(pid);
      if (m) this.peak.set(pid, Math.max(this.peak.get(pid) ?? 0, m.rss));
    }
  }
}

// ---- one drain: a sender against a server, measured --------------------------------------

/** Everything a scenario registers for cleanup on an interrupted run. */
export type Children = Set<{ killNow(): void }>;

export interface Side {
  role: string;
  pid: number;
  /** CPU of the whole process (all threads) over the drain window; 100 = one core. */
  cpuPercent: number | null;
  /** CPU time per reading drained (µs): what the drain costs, whatever the rate. */
  cpuMicrosPerReading: number | null;
  /** Main-thread busy share (event-loop utilisation) in the window; measured inside the child. */
  mainThreadBusyPercent: number | null;
  /** VmHWM: the process's RSS high-water mark over its whole life (start-up included). */
  peakRssMB: number | null;
  /** The highest RSS sampled during the drain window. */
  peakRssInWindowMB: number | null;
}

/** All CPUs of the machine over the window (100 = one core), and what neither side used (this bench, anything else running). */
export interface MachineShare {
  cpuPercent: number | null;
  otherProcessesCpuPercent: number | null;
}

function side(role: string, pid: number, cpuSeconds: number | null, seconds: number, readings: number, busyPercent: number | null, hwm: number | null, sampled: number | null): Side {
  return {
    role,
    pid,
    cpuPercent: cpuSeconds === null ? null : round((100 * cpuSeconds) / seconds, 0),
    cpuMicrosPerReading: cpuSeconds === null || readings === 0 ? null : round((cpuSeconds * 1e6) / readings, 2),
    mainThreadBusyPercent: busyPercent,
    peakRssMB: mb(hwm),
    peakRssInWindowMB: mb(sampled),
  };
}

function machineShare(all: number | null, a: Side, b: Side): MachineShare {
  const ours = (a.cpuPercent ?? 0) + (b.cpuPercent ?? 0);
  return { cpuPercent: all, otherProcessesCpuPercent: all === null ? null : Math.max(0, Math.round(all - ours)) };
}

const cpuDelta = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a);

/** What both senders report at the end (the gateway's `drained` line, the jsonl sender's `done`). */
export interface SenderReport {
  complete: boolean;
  ackedSeq: number;
  window: WindowFigures;
  split: Record<string, StageSummary>;
}

/** A server's `stats` answer (lib/sync-measure.ts, answerCommands). */
export interface ServerStats {
  mainThreadBusyPercent: number;
  split: Record<string, StageSummary>;
  socketBytes: { received: number; sent?: number };
}

export interface DrainSetup<U> {
  server: ServerChild;
  startSender: () => RunChild;
  roles: { sender: string; receiver: string };
  /** Runs after the sender exited, the server still up; what it returns comes back as `whileUp`. */
  whileUp?: () => Promise<U>;
}

export interface Drained<T extends SenderReport, U> {
  report: T;
  stats: ServerStats;
  sender: Side;
  receiver: Side;
  machine: MachineShare;
  whileUp: U | undefined;
}

/** Runs `body` with `server` registered for cleanup, and stops the server after it, whatever happens. */
export async function withServer<S extends ServerChild, R>(children: Children, server: S, body: (server: S) => Promise<R>): Promise<R> {
  children.add(server);
  try {
    return await body(server);
  } finally {
    await server.stop();
    children.delete(server);
  }
}

/**
 * One drain: resets the server, starts the sender and measures from the sender's `started`
 * line to its result (the sender's CPU from inside it, the server's from /proc, the RSS of
 * both sampled); then the server's stats, `whileUp`, and the server stopped (its DuckDB
 * file closed). The sender is stopped at the end, whatever happens.
 */
export async function drain<T extends SenderReport, U = undefined>(maxSeconds: number, children: Children, setup: DrainSetup<U>): Promise<Drained<T, U>> {
  const { server, roles } = setup;
  await server.reset();
  const sender = setup.startSender();
  children.add(sender);
  try {
    const sampler = new RssSampler([sender.pid, server.pid]);
    sampler.start();
    await sender.started();
    await server.mark();
    const t0 = performance.now();
    const machine = new MachineCpu();
    const cpu0 = server.cpuSeconds();
    const report = await sender.result<T>(maxSeconds * 1000 + REPORT_GRACE_MS);
    const outerSeconds = (performance.now() - t0) / 1000;
    const serverCpu = cpuDelta(cpu0, server.cpuSeconds());
    const machineAll = machine.percent();
    sampler.stop();
    const stats = await server.stats<ServerStats>();
    await sender.exited();
    const whileUp = setup.whileUp ? await setup.whileUp() : undefined;
    const hwm = server.memory()?.hwm ?? null;
    await server.stop();

    const { window: w, ackedSeq: n } = report;
    const sampledPeak = Math.max(sampler.peak.get(sender.pid) ?? 0, w.peakRssSampledMB * 2 ** 20);
    const senderSide = side(roles.sender, sender.pid, w.cpuSeconds, w.seconds, n, w.mainThreadBusyPercent, w.vmHwmMB === null ? null : w.vmHwmMB * 2 ** 20, sampledPeak);
    const receiverSide = side(roles.receiver, server.pid, serverCpu, outerSeconds, n, stats.mainThreadBusyPercent, hwm, sampler.peak.get(server.pid) ?? null);
    return { report, stats, sender: senderSide, receiver: receiverSide, machine: machineShare(machineAll, senderSide, receiverSide), whileUp };
  } finally {
    await sender.stop();
    children.delete(sender);
  }
}
