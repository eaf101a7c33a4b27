// Starts lib/modbus-peer.js (one Modbus TCP server per device, in its own process) and
// reads its CPU time from /proc, so the bench can tell the gateway's cost from the peer's.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds } from './proc.js';

export const PEER_KINDS = ['fast', 'modbus-serial'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

const SCRIPT = fileURLToPath(new URL('./modbus-peer.js', import.meta.url));
const LOOPBACK = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const STATS_TIMEOUT_MS = 2_000;
const STOP_GRACE_MS = 3_000;

/**
 * `count` distinct free loopback ports: all are bound at once (so none repeats), then
 * released for the peer. modbus-serial cannot listen on port 0 and report the port back.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, LOOPBACK, () => resolve());
      });
      ports.push((srv.address() as AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}



export interface PeerStats {
  requests: number;
  registers: number;
}

export class ModbusPeerChild {
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly lines: Interface;
  private readonly stderrTail: string[] = [];
  private statsWaiter: ((s: PeerStats | null) => void) | null = null;

  private constructor(
    private readonly proc: ChildProcess,
    readonly kind: PeerKind,
    readonly ports: readonly number[],
  ) {
    proc.once('exit', (code, signal) => {
      this.exited = { code, signal };
      this.statsWaiter?.(null);
    });
    this.lines = createInterface({ input: proc.stdout! });
    this.lines.on('line', (l) => this.onLine(l));
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      this.stderrTail.push(l);
      if (this.stderrTail.length > 20) this.stderrTail.shift();
    });
    proc.stdin!.on('error', () => undefined); // EPIPE once the peer is gone
    proc.on('error', (err) => this.stderrTail.push(`spawn: ${err.message}`)); // start then times out
  }

  static async start(kind: PeerKind, count: number): Promise<ModbusPeerChild> {
    const ports = await freePorts(count);
    const proc = spawn(process.execPath, [SCRIPT, kind, ...ports.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new ModbusPeerChild(proc, kind, ports);
    try {
      await peer.waitReady();
    } catch (err) {
      await peer.stop();
      throw err;
    }
    return peer;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exited;
  }

  cpuSeconds(): number | null {
    return this.exited ? null : procCpuSeconds(this.pid);
  }

  /** Requests and registers the peer has answered so far (null if it does not say in time). */
  stats(): Promise<PeerStats | null> {
    if (this.exited || this.statsWaiter) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), STATS_TIMEOUT_MS);
      const done = (s: PeerStats | null) => {
        clearTimeout(timer);
        this.statsWaiter = null;
        resolve(s);
      };
      this.statsWaiter = done;
      this.proc.stdin!.write('stats\n');
    });
  }

  /** SIGTERM, SIGKILL after a grace period. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.exited || this.proc.pid === undefined) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin!.end();
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(timer);
  }

  /** Last-resort cleanup for exit paths that cannot await. */
  killNow(): void {
    if (!this.exited && this.proc.pid !== undefined) this.proc.kill('SIGKILL');
  }

  private waitReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`Modbus peer (${this.kind}) ${why}${this.stderrTail.length ? `: ${this.stderrTail.join('\n')}` : ''}`));
      };
      const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const onLine = (l: string) => {
        if (l === 'ready') {
          cleanup();
          resolve();
        } else if (l.startsWith('error ')) fail(l.slice('error '.length));
      };
      const onExit = () => fail(`exited during start (${JSON.stringify(this.exited)})`);
      const cleanup = () => {
        clearTimeout(timer);
        this.lines.off('line', onLine);
        this.proc.off('exit', onExit);
      };
      this.lines.on('line', onLine);
      this.proc.once('exit', onExit);
    });
  }

  private onLine(line: string): void {
    if (!line.startsWith('stats ') || !this.statsWaiter) return;
    try {
      const s = JSON.parse(line.slice('stats '.length)) as PeerStats;
      this.statsWaiter(s);
    } catch {
      this.statsWaiter(null);
    }
  }
}
