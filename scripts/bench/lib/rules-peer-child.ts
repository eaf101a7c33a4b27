// Starts lib/rules-peer.js (a Modbus TCP actuator and probe publisher in its own process),
// collects the probes it publishes and the writes it receives, each with its own
// timestamp, and estimates the offset between its clock and this process's, so those can
// be set against moments seen here (a reading reaching the gateway's bus, a firing).
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PeerChild, PeerHandle } from './child.js';

const SCRIPT = fileURLToPath(new URL('./rules-peer.js', import.meta.url));
const PONG_TIMEOUT_MS = 1_000;
const PROBE_TIMEOUT_MS = 5_000;
/** Keeps memory bounded if a run writes far more than expected. */
const MAX_WRITES = 1_000_000;

/** This process's wall clock in ms, the same way the peer reads its own. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export interface PeerWrite {
  fc: number;
  address: number;
  value: number;
  /** Arrival at the peer, in THIS process's clock (peer clock − offset). */
  at: number;
}

export interface PeerProbe {
  seq: number;
  /** Publish, in THIS process's clock. */
  at: number;
}

export interface ClockOffset {
  /** peer clock − this clock, ms, from the ping with the shortest round trip. */
  offsetMs: number;
  /** That round trip; the offset is good to ± half of it. */
  rttMs: number;
  samples: number;
}

export class RulesPeerChild extends PeerHandle {
  private pongWaiter: ((t: number | null) => void) | null = null;
  private offsetMs = 0;
  /** Writes as the peer reported them, in its clock. */
  private readonly raw: Array<{ fc: number; address: number; value: number; t: number }> = [];
  /** Probes as the peer reported them, in its clock. */
  private readonly rawProbes: Array<{ seq: number; t: number }> = [];
  private readonly lineWaiters = new Set<(line: string) => void>();
  port = 0;

  private constructor(child: PeerChild) {
    super(child);
    child.proc.once('exit', () => this.pongWaiter?.(null));
    child.lines.on('line', (l) => this.onLine(l));
  }

  static async start(): Promise<RulesPeerChild> {
    const peer = new RulesPeerChild(new PeerChild(SCRIPT, [], 'Modbus peer'));
    peer.port = await peer.child.ready((l) => (l.startsWith('ready ') ? Number(l.slice('ready '.length)) : undefined));
    return peer;
  }

  /**
   * Estimates the clock offset from `rounds` pings (NTP-style: the peer's stamp against the
   * midpoint of send and receive here), keeping the one with the shortest round trip.
   * Run it while this event loop is quiet. Later writes are converted with it.
   */
  async calibrate(rounds = 30): Promise<ClockOffset> {
    let best: ClockOffset | null = null;
    for (let i = 0; i < rounds; i++) {
      const t0 = wallMs();
      const tc = await this.ping();
      const t1 = wallMs();
      if (tc === null) break;
      const rtt = t1 - t0;
      if (!best || rtt < best.rttMs) best = { offsetMs: tc - (t0 + t1) / 2, rttMs: rtt, samples: 0 };
    }
    if (!best) throw new Error(`Modbus peer did not answer pings${this.child.stderrSuffix()}`);
    best.samples = rounds;
    this.offsetMs = best.offsetMs;
    return best;
  }

  /** Every write reported so far, in this process's clock, in arrival order. */
  writes(): PeerWrite[] {
    return this.raw.map((w) => ({ fc: w.fc, address: w.address, value: w.value, at: w.t - this.offsetMs }));
  }

  /** Every probe published so far, in this process's clock. */
  probes(): PeerProbe[] {
    return this.rawProbes.map((p) => ({ seq: p.seq, at: p.t - this.offsetMs }));
  }

  /** Probes published so far (the next probe's seq). */
  get probeCount(): number {
    return this.rawProbes.length;
  }

  /** Connects the peer's probe publisher to the broker and starts publishing every `everyMs`. */
  async startProbes(mqttPort: number, everyMs: number): Promise<void> {
    const line = await this.request(`probe ${mqttPort} ${everyMs}`, (l) => l === 'probing' || l.startsWith('error '), PROBE_TIMEOUT_MS);
    if (line !== 'probing') throw new Error(`probe publisher did not start: ${line ?? 'no answer'}`);
  }

  /** Stops publishing probes and disconnects (resolves after at most a few seconds either way). */
  async stopProbes(): Promise<void> {
    await this.request('unprobe', (l) => l.startsWith('unprobed '), PROBE_TIMEOUT_MS);
  }

  /** Sends one stdin command and resolves with the first stdout line `match` accepts (null on timeout or exit). */
  private request(command: string, match: (line: string) => boolean, timeoutMs: number): Promise<string | null> {
    if (this.child.exitStatus) return Promise.resolve(null);
    return new Promise((resolve) => {
      const done = (line: string | null) => {
        clearTimeout(timer);
        this.lineWaiters.delete(waiter);
        this.child.proc.off('exit', onExit);
        resolve(line);
      };
      const waiter = (line: string) => {
        if (match(line)) done(line);
      };
      const onExit = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      this.lineWaiters.add(waiter);
      this.child.proc.once('exit', onExit);
      this.child.send(command);
    });
  }

  private ping(): Promise<number | null> {
    if (this.child.exitStatus || this.pongWaiter) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), PONG_TIMEOUT_MS);
      const done = (t: number | null) => {
        clearTimeout(timer);
        this.pongWaiter = null;
        resolve(t);
      };
      this.pongWaiter = done;
      this.child.send('ping');
    });
  }

  private onLine(line: string): void {
    for (const w of [...this.lineWaiters]) w(line);
    if (line.startsWith('probe ')) {
      const [seq, t] = line.slice('probe '.length).split(' ').map(Number);
      if (this.rawProbes.length < MAX_WRITES && seq !== undefined && t !== undefined && Number.isFinite(t)) this.rawProbes.push({ seq, t });
    } else if (line.startsWith('write ')) {
      const [fc, address, value, t] = line.slice('write '.length).split(' ').map(Number);
      if (this.raw.length < MAX_WRITES && t !== undefined && Number.isFinite(t)) this.raw.push({ fc: fc!, address: address!, value: value!, t });
    } else if (line.startsWith('pong ')) {
      this.pongWaiter?.(Number(line.slice('pong '.length)));
    }
  }
}
