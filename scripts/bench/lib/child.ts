// A peer run as a child process: spawned with piped stdio, it prints one `ready…` line on
// stdout once it serves (or `error <why>`), keeps the last stderr lines for error messages,
// and is stopped with SIGTERM (SIGKILL after a grace period). Its CPU time comes from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { procCpuSeconds } from './proc.js';

const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;
const STDERR_LINES = 20;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class PeerChild {
  private exited: ExitStatus | null = null;
  /** The child's stdout, line by line. */
  readonly lines: Interface;
  private readonly stderrTail: string[] = [];
  readonly proc: ChildProcess;

  /**
   * Spawns `node <script> ...args`. `name` starts the error messages ("Modbus peer").
   * Attach line listeners before `ready()` so none is missed.
   */
  constructor(
    script: string,
    args: readonly string[],
    private readonly name: string,
  ) {
    const proc = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.once('exit', (code, signal) => {
      this.exited = { code, signal };
    });
    this.lines = createInterface({ input: proc.stdout! });
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      this.stderrTail.push(l);
      if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
    });
    proc.stdin!.on('error', () => undefined); // EPIPE once the peer is gone
    proc.on('error', (err) => this.stderrTail.push(`spawn: ${err.message}`)); // start then times out
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get exitStatus(): ExitStatus | null {
    return this.exited;
  }

  cpuSeconds(): number | null {
    return this.exited ? null : procCpuSeconds(this.pid);
  }

  /** `: <last stderr lines>`, or '' if there were none: the tail of an error message. */
  stderrSuffix(): string {
    return this.stderrTail.length ? `: ${this.stderrTail.join('\n')}` : '';
  }

  /** Writes one command line to the child's stdin. */
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  /**
   * Waits for the first stdout line `parse` accepts (returns non-undefined for) and resolves
   * with its value; rejects on an `error …` line, on exit or after a timeout, stopping the child.
   */
  async ready<T>(parse: (line: string) => T | undefined): Promise<T> {
    try {
      return await this.waitReady(parse);
    } catch (err) {
      await this.stop();
      throw err;
    }
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

  private waitReady<T>(parse: (line: string) => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`${this.name} ${why}${this.stderrSuffix()}`));
      };
      const timer = setTimeout(() => fail(`not ready after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const onLine = (l: string) => {
        const value = parse(l);
        if (value !== undefined) {
          cleanup();
          resolve(value);
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
}

/** Base of a bench's peer wrapper: the process accessors, delegated to its PeerChild. */
export abstract class PeerHandle {
  protected constructor(protected readonly child: PeerChild) {}

  get pid(): number {
    return this.child.pid;
  }

  get exitStatus(): ExitStatus | null {
    return this.child.exitStatus;
  }

  cpuSeconds(): number | null {
    return this.child.cpuSeconds();
  }

  /** SIGTERM, SIGKILL after a grace period. Safe to call twice. */
  stop(): Promise<void> {
    return this.child.stop();
  }

  /** Last-resort cleanup for exit paths that cannot await. */
  killNow(): void {
    this.child.killNow();
  }
}
