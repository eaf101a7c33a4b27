// Lock routes. They need only a valid token at the door (viewer): whether the caller
// may operate this lock is decided by the lock controller, so that every refused
// attempt is audited as access.denied with the caller's identity.
import type { FastifyInstance } from 'fastify';
import type {} from '../contract/api.js';
import type { LockAction, LockController } from '../locks.js';

interface LockBody {
  seconds?: number;
  reason?: string;
}

export function registerLockRoutes(app: FastifyInstance, locks: LockController): void {
  app.get('/api/v1/locks', { config: { minRole: 'viewer' } }, async () => ({ locks: locks.list() }));

  app.get<{ Params: { id: string } }>('/api/v1/locks/:id', { config: { minRole: 'viewer' } }, async (req, reply) => {
    const lock = locks.get(req.params.id);
    return lock ? lock : reply.code(404).send({ error: `no lock "${req.params.id}"` });
  });

  for (const action of ['unlock', 'lock'] as const satisfies readonly LockAction[]) {
    app.post<{ Params: { id: string }; Body: LockBody | undefined }>(
      `/api/v1/locks/:id/${action}`,
      {
        config: { minRole: 'viewer', lockAction: action, idempotent: true },
        schema: {
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: {
              ...(action === 'unlock' ? { seconds: { type: 'integer', minimum: 0 } } : {}),
              reason: { type: 'string', maxLength: 500 },
            },
          },
        },
      },
      async (req, reply) => {
        const id = req.identity!;
        const outcome = await locks.operate(
          req.params.id,
          action,
          { name: id.name, role: id.role, doorGroups: id.doorGroups, via: 'api' },
          {
            ...(req.body?.seconds !== undefined ? { seconds: req.body.seconds } : {}),
            ...(req.body?.reason ? { reason: req.body.reason } : {}),
          },
        );
        return reply
          .code(outcome.status)
          .send({ granted: outcome.granted, detail: outcome.detail, lock: locks.get(req.params.id) ?? null });
      },
    );
  }
}
