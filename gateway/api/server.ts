// Local HTTP API (fastify). /health and /metrics are open (probes and Prometheus);
// everything under /api needs a bearer token whose role is at least the route's.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ROLES, type Role } from '../../config/schema.js';
import type { Gateway } from '../gateway.js';
import { registerAlertRoutes } from './alerts.js';
import { registerCameraRoutes } from './cameras.js';
import { registerLockRoutes } from './locks.js';
import { registerRoutes } from './routes.js';
import type { TokenIdentity } from './tokens.js';

export interface Api {
  app: FastifyInstance;
  port: number;
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
  interface FastifyContextConfig {
    minRole?: Role;
    /** Lock routes: a refused token is also audited as access.denied. */
    lockAction?: 'lock' | 'unlock';
  }
}

// admin > operator > viewer
const RANK: Record<Role, number> = Object.fromEntries(ROLES.map((r, i) => [r, ROLES.length - i])) as Record<Role, number>;

export function roleAllows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

export async function startApi(gw: Gateway): Promise<Api> {
  // Unknown query/body keys are refused (400), not silently dropped: typos should show.
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024, ajv: { customOptions: { removeAdditional: false } } });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const need = req.routeOptions.config.minRole;
    if (!need) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const identity = m ? gw.tokens.verify(m[1]!) : undefined;
    if (!identity) {
      gw.metrics.authFailures.inc({ surface: 'http', reason: m ? 'bad_token' : 'no_token' });
      const action = req.routeOptions.config.lockAction;
      if (action) await gw.locks.auditUnauthenticated((req.params as { id: string }).id, action, 'api', m ? 'invalid token' : 'missing bearer token');
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: m ? 'invalid token' : 'missing bearer token' });
    }
    if (!roleAllows(identity.role, need)) {
      gw.metrics.authFailures.inc({ surface: 'http', reason: 'forbidden' });
      return reply.code(403).send({ error: `role "${identity.role}" may not do this; needs "${need}" or higher` });
    }
    req.identity = identity;
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) gw.log.error({ err, url: req.url }, 'API error');
    void reply.code(status).send({ error: err.message });
  });

  registerRoutes(app, gw);
  registerLockRoutes(app, gw);
  registerAlertRoutes(app, gw);
  registerCameraRoutes(app, gw);
  await app.listen({ host: gw.config.http.host, port: gw.config.http.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : gw.config.http.port;
  return { app, port, close: () => app.close() };
}
