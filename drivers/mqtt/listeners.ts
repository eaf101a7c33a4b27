// Network listeners for the broker: plain TCP, TLS when a cert/key is configured, and
// MQTT over WebSocket when asked for. Each remembers the peer address of its streams so
// the loopback-only anonymous rule works on every transport.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { MqttDriverConfig } from './schema.js';

export type StreamHandler = (stream: Duplex, remoteAddress: string | undefined) => void;

export interface Listeners {
  ports: { tcp: number; tls?: number; ws?: number };
  close(): Promise<void>;
}

function listen(server: NetServer | HttpServer, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new Error(`MQTT ${what} listener could not bind ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: NetServer | HttpServer, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
}

export async function openListeners(cfg: MqttDriverConfig, onStream: StreamHandler): Promise<Listeners> {
  const servers: { server: NetServer | HttpServer; sockets: Set<Socket> }[] = [];
  const track = <S extends NetServer | HttpServer>(server: S): S => {
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    servers.push({ server, sockets });
    return server;
  };
  const close = () => Promise.all(servers.map((s) => closeServer(s.server, s.sockets))).then(() => undefined);
  try {
    const tcp = track(createNetServer((s) => onStream(s, s.remoteAddress)));
    const ports: Listeners['ports'] = { tcp: await listen(tcp, cfg.port, cfg.host, 'TCP') };
    if (cfg.tls) {
      const tls = track(
        createTlsServer({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }, (s) => onStream(s, s.remoteAddress)),
      );
      ports.tls = await listen(tls, cfg.tls.port, cfg.host, 'TLS');
    }
    if (cfg.websocket) {
      const http = track(createHttpServer((_req, res) => res.writeHead(426).end('MQTT over WebSocket only\n')));
      const wss = new WebSocketServer({ server: http, maxPayload: cfg.maxPayloadBytes + 1024 });
      wss.on('connection', (ws, req) => onStream(createWebSocketStream(ws), req.socket.remoteAddress));
      ports.ws = await listen(http, cfg.websocket.port, cfg.host, 'WebSocket');
    }
    return { ports, close };
  } catch (err) {
    await close();
    throw err;
  }
}
