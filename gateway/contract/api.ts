// What a route of the local API may declare and rely on, for the gateway's own routes and
// those a driver adds (its descriptor's `routes`): the role it needs, whether it honours
// Idempotency-Key, and the identity the request was made with.
import type { Role } from '../kernel/schema-kit.js';

export interface TokenIdentity {
  name: string;
  role: Role;
  /** Lock groups this identity may operate ("*" = all). */
  doorGroups: readonly string[];
  /** Its own request budget, when it has one (else http.rateLimit.requests). */
  rateLimit?: { max: number; windowS: number };
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
  interface FastifyContextConfig {
    /** Needs a bearer token with at least this role (none: an open route). */
    minRole?: Role;
    /** Lock routes: a refused token is also audited as access.denied. */
    lockAction?: 'lock' | 'unlock';
    /** Honour Idempotency-Key on this route. */
    idempotent?: boolean;
  }
}
