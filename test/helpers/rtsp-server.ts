// Runs test/helpers/rtsp-server.py (GStreamer's RTSP server) as a child: a still photo looped
// as an H.264 "camera" on rtsp://127.0.0.1:<port>/cam. stop() kills it (a camera dropping
// off the network), restart() brings it back on the same port.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from './gateway.js';

const SCRIPT = fileURLToPath(new URL('../../../test/helpers/rtsp-server.py', import.meta.url));
/** Debian's python3 (python3-gi); a pyenv `python3` on PATH cannot import gi. */
export const PYTHON = process.env.OUTPOST_TEST_PYTHON ?? '/usr/bin/python3';

export interface RtspServerOptions {
  image: string;
  fps?: number;
  port?: number;
  path?: string;
}

export interface RtspServer {
  url: string;
  port: number;
  /** The server's pid, null while stopped. */
  readonly pid: number | null;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export async function startRtspServer(opts: RtspServerOptions): Promise<RtspServer> {
  const port = opts.port ?? (await freePort());
  const path = opts.path ?? '/cam';
  const fps = opts.fps ?? 5;
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    // A freshly freed port can be briefly unavailable; retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        child = await spawnServer(opts.image, port, fps, path);
        await waitAccepting(port, 5000);
        return;
      } catch (err) {
        if (child) await killChild(child);
        child = null;
        if (attempt >= 4) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  await launch();
  return {
    url: `rtsp://127.0.0.1:${port}${path}`,
    port,
    get pid() {
      return child?.pid ?? null;
    },
    async stop() {
      const c = child;
      child = null;
      if (c) await killChild(c);
    },
    async restart() {
      if (child) await killChild(child);
      child = null;
      await launch();
    },
  };
}

function spawnServer(image: string, port: number, fps: number, path: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const c = spawn(PYTHON, [SCRIPT, image, String(port), String(fps), path], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`RTSP server did not start in 10 s: ${err.trim()}`)), 10_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      c.kill('SIGKILL');
      reject(e);
    };
    c.once('error', fail);
    c.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    c.once('exit', (code) => fail(new Error(`RTSP server exited (${code}): ${(out + err).trim()}`)));
    c.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(timer);
        c.removeAllListeners('exit');
        resolve(c);
      } else if (out.includes('ERROR')) fail(new Error(out.trim()));
    });
  });
}

/** Resolves once a TCP connection to the port succeeds. */
async function waitAccepting(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`RTSP server not accepting on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, SIGKILL after 2 s; resolves when the process is gone. */
function killChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
    c.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    c.kill('SIGTERM');
  });
}
