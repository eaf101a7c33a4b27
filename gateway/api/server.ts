// Local HTTP API (fastify). /health and /metrics are open (probes and Prometheus);
// everything under /api needs a bearer token whose role is at least the route's
// (gateway/api/auth.ts, with the rate limits). HTTPS off loopback (gateway/api/tls.ts).
// Each route module gets only the parts it needs (ApiDeps), never the whole gateway.
import { createServer, type Server } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import type { SiteConfig } from '../../config/schema.js';
import type { AlertStore } from '../alerts.js';
import type { Logger } from '../kernel/log.js';
import type { LockController } from '../locks.js';
import type { Metrics } from '../metrics.js';
import { registerActRoutes, type ActDeps } from './act-routes.js';
import { registerAlertRoutes } from './alerts.js';
import { registerAuth } from './auth.js';
import { registerIdempotency } from './idempotency.js';
import { registerLockRoutes } from './locks.js';
import { registerReadRoutes, type ReadDeps } from './routes.js';
import { resolveApiTls, type ApiTls } from './tls.js';
import type { TokenStore } from './tokens.js';
import type { WebhookService } from '../webhooks/service.js';
import { registerWebhookRoutes } from './webhooks.js';

export interface ApiDeps extends ReadDeps, Omit<ActDeps, 'queryLimits' | 'countQuery'> {
  http: SiteConfig['http'];
  dataDir: string;
  log: Logger;
  metrics: Metrics;
  tokens: TokenStore;
  locks: LockController;
  alerts: AlertStore;
  webhooks: WebhookService;
  /** Routes the drivers add (their descriptors' `routes`). */
  driverRoutes(app: FastifyInstance): void;
}

export { roleAllows } from './auth.js';

export interface Api {
  app: FastifyInstance;
  port: number;
  /** The API's own base URL as seen from this box (https when TLS is on). */
  url: string;
  tls: ApiTls | null;
  close(): Promise<void>;
}

/** Plain HTTP on `port` that sends every request to the same path over HTTPS. */
function startRedirect(host: string, port: number, httpsPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const name = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
    res.writeHead(308, { location: `https://${name}:${httpsPort}${req.url ?? '/'}` }).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export async function startApi(deps: ApiDeps): Promise<Api> {
  const { http, log, metrics } = deps;
  const tls = resolveApiTls(http, deps.dataDir, log);
  // Unknown query/body keys are refused (400), not silently dropped: typos should show.
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false } },
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
  }) as unknown as FastifyInstance;

  registerAuth(app, {
    tokens: deps.tokens,
    limits: http.rateLimit,
    metrics,
    log,
    auditLockRefusal: (lock, action, why) => deps.locks.auditUnauthenticated(lock, action, 'api', why),
  });
  registerIdempotency(app, deps.db, log, { replayed: () => metrics.idempotentReplays.inc() });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) log.error({ err, url: req.url }, 'API error');
    void reply.code(status).send({ error: err.message });
  });

  registerReadRoutes(app, deps);
  registerActRoutes(app, { ...deps, queryLimits: http.query, countQuery: (outcome) => metrics.sqlQueries.inc({ outcome }) });
  registerLockRoutes(app, deps.locks);
  registerAlertRoutes(app, deps.alerts);
  registerWebhookRoutes(app, deps.webhooks);
  deps.driverRoutes(app);
  await app.listen({ host: http.host, port: http.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : http.port;
  const redirect = tls && http.tls.redirectPort ? await startRedirect(http.host, http.tls.redirectPort, port) : null;
  const local = ['0.0.0.0', '::', ''].includes(http.host) ? '127.0.0.1' : http.host;
  return {
    app,
    port,
    url: `${tls ? 'https' : 'http'}://${local.includes(':') ? `[${local}]` : local}:${port}`,
    tls,
    close: async () => {
      await new Promise<void>((r) => (redirect ? redirect.close(() => r()) : r()));
      await app.close();
    },
  };
}
