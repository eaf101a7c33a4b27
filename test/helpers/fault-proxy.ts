// A loopback HTTP proxy in front of the real cloud that records every request and can be
// told to fail the next ones: an HTTP status (with Retry-After), a slow answer, or a reset
// connection. The uploader under test talks to the proxy; the cloud stays real.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  { kind: 'status'; status: number; retryAfter?: string } | { kind: 'reset' } | { kind: 'slow'; delayMs: number } | { kind: 'down' }; // reset every request until cleared

export interface ProxiedRequest {
  at: number;
  method: string;
  path: string;
  stream?: string;
  first?: number;
  last?: number;
  status: number | 'reset';
}

export interface FaultProxy {
  url: string;
  log: ProxiedRequest[];
  /** Faults for the next matching requests, in order (default: batch uploads only). */
  inject(faults: Fault[], match?: (path: string) => boolean): void;
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const queue: { fault: Fault; match: (p: string) => boolean }[] = [];
  const log: ProxiedRequest[] = [];
  let down = false;
  const t = new URL(target);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const entry: ProxiedRequest = { at: Date.now(), method: req.method ?? 'GET', path, status: 'reset' };
      const stream = req.headers['x-outpost-stream'];
      if (typeof stream === 'string') {
        entry.stream = stream;
        entry.first = Number(req.headers['x-outpost-first-seq']);
        entry.last = Number(req.headers['x-outpost-last-seq']);
      }
      log.push(entry);
      const i = queue.findIndex((q) => q.match(path));
      const fault = down ? ({ kind: 'down' } as Fault) : i >= 0 ? queue.splice(i, 1)[0].fault : null;
      if (fault?.kind === 'reset' || fault?.kind === 'down') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'status') {
        entry.status = fault.status;
        res.writeHead(fault.status, {
          'content-type': 'application/json',
          ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}),
        });
        res.end(JSON.stringify({ error: `injected ${fault.status}` }));
        return;
      }
      const forward = () => {
        const up = request(
          { host: t.hostname, port: t.port, method: req.method, path, headers: { ...req.headers, host: t.host } },
          (upRes) => {
            entry.status = upRes.statusCode ?? 0;
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        up.on('error', () => req.socket.destroy());
        up.end(Buffer.concat(chunks));
      };
      if (fault?.kind === 'slow') setTimeout(forward, fault.delayMs);
      else forward();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    inject(faults, match = (p) => p.startsWith('/api/v1/ingest')) {
      for (const fault of faults) queue.push({ fault, match });
    },
    setDown(d) {
      down = d;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
