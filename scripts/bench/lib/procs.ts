// Child processes seen from the bench: peers and gateways are spawned as `node …`, speak in
// stdout lines `<tag> <rest>` (answering stdin commands; lib/child-main.ts is their side), are
// stopped with SIGTERM (SIGKILL after a grace period), and their CPU and memory come from
// /proc. A Guard kills what is left and removes temp dirs however the bench ends.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const LOOPBACK = '127.0.0.1';

let ticks = 0;
/** User + system CPU seconds of a process from /proc/<pid>/stat; null if unreadable. */
export function procCpuSeconds(pid: number): number | null {
  try {
    ticks ||= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100;
    // Fields after the ")" of comm start at field 3, so utime (14) and stime (15) are 11 and 12.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / ticks;
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM (bytes) of a process ('self' for this one); null if unreadable. */
export function procMemory(pid: number | 'self'): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return Number.isFinite(kb('VmRSS')) ? { rss: kb('VmRSS'), hwm: kb('VmHWM') } : null;
  } catch {
    return null;
  }
}

/** `count` distinct free loopback ports: all bound at once (so none repeats), then released. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, LOOPBACK, resolve));
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r(null)))));
  }
}

/** A script of this folder, compiled: `libScript('peer')` → …/lib/peer.js. */
export const libScript = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

export class Child {
  readonly proc: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** The last stderr lines, for error messages. */
  private readonly tail: string[] = [];
  private readonly listeners = new Set<(line: string) => void>();
  /** Spawns `node ...nodeArgs`; `label` starts its error messages. */
  constructor(
    readonly label: string,
    nodeArgs: readonly string[],
    env?: NodeJS.ProcessEnv,
  ) {
    this.proc = spawn(process.execPath, nodeArgs, { env, stdio: 'pipe' });
    this.proc.once('exit', (code, signal) => (this.exit = { code, signal }));
    this.proc.on('error', (err) => this.tail.push(`spawn: ${err.message}`));
    this.proc.stdin!.on('error', () => undefined); // EPIPE once the child is gone
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.listeners.forEach((f) => f(l)));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => {
      if (this.tail.push(l) > 20) this.tail.shift();
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }
  /** Calls `f` for every stdout line; returns the unsubscribe. */
  onLine(f: (line: string) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }
  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }
  /** The rest of the next stdout line `<tag>` or `<tag> <rest>`; rejects on an `error …` line, on exit and after `timeoutMs`. */
  waitFor(tag: string, timeoutMs = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const done = (err: string | null, rest = '') => {
        clearTimeout(timer);
        off();
        this.proc.off('exit', onExit);
        if (err === null) resolve(rest);
        else reject(new Error(`${this.label}: ${err}${this.tail.length ? `: ${this.tail.join('\n')}` : ''}`));
      };
      const off = this.onLine((l) => {
        if (l === tag || l.startsWith(`${tag} `)) done(null, l.slice(tag.length + 1));
        else if (l.startsWith('error ')) done(l.slice('error '.length));
      });
      const onExit = () => done(`exited (${JSON.stringify(this.exit)}) while waiting for "${tag}"`);
      const timer = setTimeout(() => done(`no "${tag}" after ${timeoutMs} ms`), timeoutMs);
      if (this.exit) onExit();
      else this.proc.once('exit', onExit);
    });
  }

  /** Sends a stdin command and waits for its answer line (`tag`, by default the command's first word). */
  ask(command: string, tag = command.split(' ')[0], timeoutMs = 10_000): Promise<string> {
    const answer = this.waitFor(tag, timeoutMs);
    this.send(command);
    return answer;
  }
  /** User + system CPU seconds so far; null once it is gone. */
  cpuSeconds(): number | null {
    return this.exit ? null : procCpuSeconds(this.pid);
  }
  memory(): { rss: number; hwm: number } | null {
    return this.exit ? null : procMemory(this.pid);
  }
  exited(): Promise<unknown> {
    return this.exit || this.proc.pid === undefined ? Promise.resolve() : new Promise((r) => this.proc.once('exit', r));
  }
  /** Closes stdin, SIGTERM, SIGKILL after `graceMs`. Safe to call twice. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exit || this.proc.pid === undefined) return;
    const gone = this.exited();
    this.proc.stdin!.end();
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /** Last-resort cleanup for exit paths that cannot await. */
  killNow(): void {
    if (!this.exit && this.proc.pid !== undefined) this.proc.kill('SIGKILL');
  }
}

// Cleanup of one bench run: the children and temp dirs it registers are killed and removed on
// SIGINT/SIGTERM, on an early exit, and at `release()` (the end of the run, whatever happened).
export class Guard {
  readonly children = new Set<{ killNow(): void }>();
  private readonly dirs = new Set<string>();
  private readonly cleanup = () => {
    this.children.forEach((c) => c.killNow());
    this.dirs.forEach((d) => this.removeDir(d));
  };
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor() {
    process.once('exit', this.cleanup).once('SIGINT', this.onSignal).once('SIGTERM', this.onSignal);
  }
  /** A fresh temp dir, removed at the latest when the guard goes. */
  tempDir(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), `outpost-bench-${name}-`));
    this.dirs.add(dir);
    return dir;
  }
  removeDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.dirs.delete(dir);
  }
  release(): void {
    this.cleanup();
    process.off('exit', this.cleanup).off('SIGINT', this.onSignal).off('SIGTERM', this.onSignal);
  }
}
