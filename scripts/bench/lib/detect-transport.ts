// How a frame's bytes should cross to a worker thread: posts one model-input-sized frame at
// a time to a bare worker (which reads one byte and answers) and times the round trip and
// the main thread's share of it, for each way the pool could do it:
//   shared     one SharedArrayBuffer reused (the capture's ring of buffers): nothing moves
//   sharedNew  a fresh SharedArrayBuffer per frame (no ring)
//   transfer   a fresh ArrayBuffer per frame, moved (the old one is detached, so it cannot be reused)
//   copy       an ArrayBuffer cloned by postMessage (what happens without either)
// Each fresh buffer is filled like the capture fills it (one copy of the frame's bytes).
import { Worker } from 'node:worker_threads';
import { round, summarize } from './stats.js';

export const TRANSPORT_MODES = ['shared', 'sharedNew', 'transfer', 'copy'] as const;
export type TransportMode = (typeof TRANSPORT_MODES)[number];

export interface TransportResult {
  mode: TransportMode;
  frames: number;
  /** Post → reply, per frame, µs. */
  roundTripUsP50: number | null;
  /** Main-thread time to get a frame ready and posted (fill + postMessage), µs. */
  sendUsP50: number | null;
  /** CPU of this process (both threads) per frame, µs. */
  cpuUsPerFrame: number | null;
}

const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => parentPort.postMessage(m.data[m.data.length - 1]));
`;

export async function measureTransport(bytes: number, framesPerMode = 150): Promise<TransportResult[]> {
  const worker = new Worker(ECHO, { eval: true });
  const source = new Uint8Array(bytes).fill(7);
  const reused = new Uint8Array(new SharedArrayBuffer(bytes));
  const out: TransportResult[] = [];
  try {
    for (const mode of TRANSPORT_MODES) {
      const rtt: number[] = [];
      const send: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < framesPerMode + 10; i++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        let data: Uint8Array;
        if (mode === 'shared') data = reused;
        else data = new Uint8Array(mode === 'sharedNew' ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
        data.set(source);
        const reply = new Promise((resolve) => worker.once('message', resolve));
        worker.postMessage({ data }, mode === 'transfer' ? [data.buffer as ArrayBuffer] : []);
        const t1 = performance.now();
        await reply;
        const t2 = performance.now();
        const c = process.cpuUsage(c0);
        if (i < 10) continue; // warm-up
        send.push((t1 - t0) * 1000);
        rtt.push((t2 - t0) * 1000);
        cpu.push(c.user + c.system);
      }
      const cpuTotal = cpu.reduce((a, b) => a + b, 0);
      out.push({
        mode,
        frames: framesPerMode,
        roundTripUsP50: round(summarize(rtt).p50, 0),
        sendUsP50: round(summarize(send).p50, 0),
        cpuUsPerFrame: round(cpuTotal / framesPerMode, 0),
      });
    }
  } finally {
    await worker.terminate();
  }
  return out;
}
