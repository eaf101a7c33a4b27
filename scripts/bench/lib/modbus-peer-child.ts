// Starts lib/modbus-peer.js (one Modbus TCP server per device, in its own process) and
// reads its CPU time from /proc, so the bench can tell the gateway's cost from the peer's.
import { createServer, type Server, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { PeerChild, PeerHandle } from './child.js';

export const PEER_KINDS = ['fast', 'modbus-serial'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

const SCRIPT = fileURLToPath(new URL('./modbus-peer.js', import.meta.url));
const LOOPBACK = '127.0.0.1';
const STATS_TIMEOUT_MS = 2_000;

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

export class ModbusPeerChild extends PeerHandle {
  private statsWaiter: ((s: PeerStats | null) => void) | null = null;

  private constructor(
    child: PeerChild,
    readonly kind: PeerKind,
    readonly ports: readonly number[],
  ) {
    super(child);
    child.proc.once('exit', () => this.statsWaiter?.(null));
    child.lines.on('line', (l) => this.onLine(l));
  }

  static async start(kind: PeerKind, count: number): Promise<ModbusPeerChild> {
    const ports = await freePorts(count);
    const peer = new ModbusPeerChild(new PeerChild(SCRIPT, [kind, ...ports.map(String)], `Modbus peer (${kind})`), kind, ports);
    await peer.child.ready((l) => (l === 'ready' ? true : undefined));
    return peer;
  }

  /** Requests and registers the peer has answered so far (null if it does not say in time). */
  stats(): Promise<PeerStats | null> {
    if (this.child.exitStatus || this.statsWaiter) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), STATS_TIMEOUT_MS);
      const done = (s: PeerStats | null) => {
        clearTimeout(timer);
        this.statsWaiter = null;
        resolve(s);
      };
      this.statsWaiter = done;
      this.child.send('stats');
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
