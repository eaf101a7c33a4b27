// Who may call a route, and how often. Routes that declare `minRole` need a bearer token
// whose role is at least that. Failed authentications are counted per source address:
// past `http.rateLimit.authFailures` that address gets 429 with Retry-After until its
// window ends (logged once per window). Each token has its own request budget
// (`http.rateLimit.requests`, or the token's own `rateLimit`), reported in
// X-RateLimit-Limit / -Remaining / -Reset (seconds until the window ends) on every answer.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type SiteConfig } from '../../config/schema.js';
import { LogLimiter, type Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import { WindowLimiter, type WindowState } from '../kernel/rate-window.js';
import type { TokenStore } from './tokens.js';
import type {} from '../contract/api.js';
import { ROLES, type Role } from '../kernel/schema-kit.js';

// admin > operator > viewer
const RANK: Record<Role, number> = Object.fromEntries(ROLES.map((r, i) => [r, ROLES.length - i])) as Record<Role, number>;

export function roleAllows(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

export interface AuthDeps {
  tokens: TokenStore;
  limits: SiteConfig['http']['rateLimit'];
  metrics: Metrics;
  log: Logger;
  /** Records a lock attempt refused before an identity was known. */
  auditLockRefusal(lock: string, action: 'lock' | 'unlock', why: string): Promise<void>;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function rateHeaders(reply: FastifyReply, s: WindowState): void {
  void reply
    .header('x-ratelimit-limit', s.limit)
    .header('x-ratelimit-remaining', s.remaining)
    .header('x-ratelimit-reset', seconds(s.resetMs));
}

export function registerAuth(app: FastifyInstance, deps: AuthDeps): void {
  const { limits, metrics } = deps;
  const failures = new WindowLimiter(limits.authFailures.max, limits.authFailures.windowS * 1000, limits.maxTrackedKeys);
  const requests = new WindowLimiter(limits.requests.max, limits.requests.windowS * 1000, limits.maxTrackedKeys);
  const blockedLog = new LogLimiter(limits.authFailures.windowS * 1000);
  const budgetLog = new LogLimiter(limits.requests.windowS * 1000);

  const tooMany = async (req: FastifyRequest, reply: FastifyReply, kind: 'auth_failures' | 'requests', s: WindowState, message: string) => {
    metrics.rateLimited.inc({ surface: 'http', kind });
    const action = req.routeOptions.config.lockAction;
    if (action) await deps.auditLockRefusal((req.params as { id: string }).id, action, message);
    return reply.code(429).header('retry-after', seconds(s.resetMs)).send({ error: message });
  };

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const need = req.routeOptions.config.minRole;
    if (!need) return;
    const ip = req.ip;
    const blocked = failures.peek(ip);
    if (!blocked.allowed) {
      return tooMany(
        req,
        reply,
        'auth_failures',
        blocked,
        `too many failed authentications from ${ip}; try again in ${seconds(blocked.resetMs)} s`,
      );
    }
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const identity = m ? deps.tokens.verify(m[1]) : undefined;
    if (!identity) {
      const why = m ? 'invalid token' : 'missing bearer token';
      metrics.authFailures.inc({ surface: 'http', reason: m ? 'bad_token' : 'no_token' });
      const after = failures.hit(ip);
      if (after.remaining === 0 && blockedLog.shouldLog(ip).log) {
        deps.log.warn(
          { remote: ip, windowS: limits.authFailures.windowS, max: limits.authFailures.max },
          'too many failed API authentications: address blocked until the window ends',
        );
      }
      const action = req.routeOptions.config.lockAction;
      if (action) await deps.auditLockRefusal((req.params as { id: string }).id, action, why);
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: why });
    }
    const own = identity.rateLimit;
    const budget = requests.hit(
      identity.name,
      Date.now(),
      own?.max ?? limits.requests.max,
      (own?.windowS ?? limits.requests.windowS) * 1000,
    );
    rateHeaders(reply, budget);
    if (!budget.allowed) {
      if (budgetLog.shouldLog(identity.name).log)
        deps.log.warn({ tokenName: identity.name, limit: budget.limit }, 'API token over its request budget');
      return tooMany(
        req,
        reply,
        'requests',
        budget,
        `token "${identity.name}" is over its limit of ${budget.limit} requests; try again in ${seconds(budget.resetMs)} s`,
      );
    }
    if (!roleAllows(identity.role, need)) {
      metrics.authFailures.inc({ surface: 'http', reason: 'forbidden' });
      return reply.code(403).send({ error: `role "${identity.role}" may not do this; needs "${need}" or higher` });
    }
    req.identity = identity;
  });
}
