// Runs the real daemon (`node dist/gateway/cli.js run`) as a child process on loopback
// with a fresh data dir, so the bench measures exactly what an installer would run,
// including its process boundary and memory, and not an in-process shortcut.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parsePrometheus, total, type Sample } from './stats.js';
import { procCpuSeconds } from './proc.js';
import { BENCH_RATE_LIMITS } from './modbus-setup.js';

const CLI = fileURLToPath(new URL('../../../gateway/cli.js', import.meta.url));
const LOOPBACK = '127.0.0.1';
const HEALTH_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL = 20;
export const QUEUE_METRIC = 'outpost_store_queue_rows';

/** Binds port 0 on loopback for a moment to learn a free port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ChildLog {
  lines: number;
  warn: number;
  error: number;
  tail: string[];
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class GatewayChild {
  private readonly log: ChildLog = { lines: 0, warn: 0, error: 0, tail: [] };
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(
    private readonly proc: ChildProcess,
    readonly dir: string,
    readonly site: string,
    readonly mqttPort: number,
    readonly httpUrl: string,
  ) {
    proc.once('exit', (code, signal) => (this.exited = { code, signal }));
    for (const s of [proc.stdout, proc.stderr]) if (s) createInterface({ input: s }).on('line', (l) => this.onLine(l));
  }

  static async start(site: string): Promise<GatewayChild> {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-'));
    try {
      const [mqttPort, httpPort] = [await freePort(), await freePort()];
      const configPath = join(dir, 'site.yaml');
      writeFileSync(configPath, stringify(benchConfig(site, join(dir, 'data'), mqttPort, httpPort)));
      // The env would override log.level; the bench wants warnings and errors only.
      const env = { ...process.env };
      delete env.OUTPOST_LOG_LEVEL;
      delete env.LOG_LEVEL;
      // Same heap cap as `npm start` and the systemd unit, so RSS is what a site would see.
      const proc = spawn(process.execPath, ['--max-old-space-size=256', CLI, 'run', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const child = new GatewayChild(proc, dir, site, mqttPort, `http://${LOOPBACK}:${httpPort}`);
      try {
        await child.waitHealthy();
      } catch (err) {
        await child.stop();
        throw err;
      }
      return child;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get logSummary(): ChildLog {
    return { ...this.log, tail: [...this.log.tail] };
  }

  get exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exited;
  }

  async metrics(): Promise<Sample[]> {
    const res = await fetch(`${this.httpUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return parsePrometheus(await res.text());
  }

  /** Reads VmRSS/VmHWM (bytes) from /proc; null once the process is gone. */
  memory(): { rss: number; hwm: number } | null {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
    } catch {
      return null;
    }
  }

  /** User + system CPU seconds the child has used so far; null once it is gone. */
  cpuSeconds(): number | null {
    return procCpuSeconds(this.pid);
  }


  /** SIGTERM, SIGKILL after a grace period; then removes the data dir. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.exited && this.proc.pid !== undefined) {
      const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_GRACE_MS);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Last-resort cleanup for process exit paths that cannot await. */
  killNow(): void {
    if (!this.exited) this.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitHealthy(): Promise<void> {
    const until = Date.now() + HEALTH_TIMEOUT_MS;
    while (Date.now() < until) {
      if (this.exited) throw new Error(`gateway exited during start (${JSON.stringify(this.exited)}): ${this.log.tail.join('\n')}`);
      try {
        const res = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        if (res.status === 200) return;
      } catch {
        /* not listening yet */
      }
      await sleep(100);
    }
    throw new Error(`gateway not healthy after ${HEALTH_TIMEOUT_MS} ms: ${this.log.tail.join('\n')}`);
  }

  // pino writes JSON lines; count warn (40) and error/fatal (50, 60) and keep a short tail.
  private onLine(line: string): void {
    this.log.lines++;
    const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
    if (level >= 50) this.log.error++;
    else if (level >= 40) this.log.warn++;
    this.log.tail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
    if (this.log.tail.length > LOG_TAIL) this.log.tail.shift();
  }
}

function benchConfig(site: string, dataDir: string, mqttPort: number, httpPort: number): Record<string, unknown> {
  return {
    site,
    dataDir,
    log: { level: 'warn' },
    // Retention would scan the table mid-run; the bench measures ingest alone.
    store: { retention: { checkIntervalS: 3600 } },
    http: { host: LOOPBACK, port: httpPort, tokens: [], rateLimit: BENCH_RATE_LIMITS },
    drivers: {
      mqtt: { host: LOOPBACK, port: mqttPort, maxMessagesPerSecond: 0, maxConnections: 10000 },
      simulator: { enabled: false },
    },
  };
}

/**
 * Samples the child's RSS (from /proc, every tick) and its store queue depth (from
 * /metrics, one request at a time so a busy gateway never gets a pile of them).
 * `takeWindow` gives the peaks since its last call; `peakRss` is over the whole run.
 */
export class ChildSampler {
  private timer: NodeJS.Timeout | null = null;
  private scraping = false;
  peakRss = 0;
  private window = { rss: 0, queueRows: 0 };

  constructor(
    private readonly child: GatewayChild,
    private readonly everyMs = 250,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  takeWindow(): { rss: number; queueRows: number } {
    this.sample();
    const w = this.window;
    this.window = { rss: 0, queueRows: 0 };
    return w;
  }

  private sample(): void {
    const m = this.child.memory();
    if (m && Number.isFinite(m.rss)) {
      this.peakRss = Math.max(this.peakRss, m.rss);
      this.window.rss = Math.max(this.window.rss, m.rss);
    }
    if (this.scraping) return;
    this.scraping = true;
    this.child
      .metrics()
      .then((s) => (this.window.queueRows = Math.max(this.window.queueRows, total(s, QUEUE_METRIC))))
      .catch(() => undefined) // a missed sample only lowers the reported peak
      .finally(() => (this.scraping = false));
  }
}
