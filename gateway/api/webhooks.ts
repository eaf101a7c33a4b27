// The webhook dead-letter queue (admin only): list dead deliveries, send one again with a
// fresh retry schedule, or drop it. What `outpost webhooks dlq` calls.
import type { FastifyInstance } from 'fastify';
import type {} from '../contract/api.js';
import type { WebhookService } from '../webhooks/service.js';

interface ListQuery {
  endpoint?: string;
  limit?: number;
}

export function registerWebhookRoutes(app: FastifyInstance, webhooks: WebhookService): void {
  app.get<{ Querystring: ListQuery }>(
    '/api/v1/webhooks/dlq',
    {
      config: { minRole: 'admin' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { endpoint: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 } },
        },
      },
    },
    async (req) => ({ deliveries: await webhooks.listDead(req.query.limit ?? 100, req.query.endpoint) }),
  );

  app.post<{ Body: { endpoint: string; since: string; until?: string; type?: string; subject?: string } }>(
    '/api/v1/webhooks/replay',
    {
      config: { minRole: 'admin' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['endpoint', 'since'],
          properties: {
            endpoint: { type: 'string' },
            since: { type: 'string' },
            until: { type: 'string' },
            type: { type: 'string' },
            subject: { type: 'string' },
          },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const since = Date.parse(b.since);
      const until = b.until !== undefined ? Date.parse(b.until) : Date.now() + 1;
      if (!Number.isFinite(since) || !Number.isFinite(until)) return reply.code(400).send({ error: 'since/until must be ISO 8601 times' });
      try {
        const n = await webhooks.replay(b.endpoint, {
          since,
          until,
          ...(b.type ? { type: b.type } : {}),
          ...(b.subject ? { subject: b.subject } : {}),
        });
        return { endpoint: b.endpoint, events: n };
      } catch (err) {
        return reply.code(404).send({ error: (err as Error).message });
      }
    },
  );

  app.post<{ Params: { id: string } }>('/api/v1/webhooks/dlq/:id/retry', { config: { minRole: 'admin' } }, async (req, reply) => {
    const d = await webhooks.retry(req.params.id);
    return d ?? reply.code(404).send({ error: `no dead delivery "${req.params.id}"` });
  });

  app.delete<{ Params: { id: string } }>('/api/v1/webhooks/dlq/:id', { config: { minRole: 'admin' } }, async (req, reply) =>
    (await webhooks.drop(req.params.id))
      ? { dropped: req.params.id }
      : reply.code(404).send({ error: `no dead delivery "${req.params.id}"` }),
  );
}
