// Alert routes: viewers read alerts, operators acknowledge and resolve them. The caller's
// token name is recorded as who did it. AlertError carries its own status (404 unknown
// id, 409 wrong state), which the API's error handler answers as `{ error }`.
import type { FastifyInstance } from 'fastify';
import { ALERT_STATUSES, type AlertStatus, type AlertStore } from '../alerts.js';
import type {} from '../contract/api.js';
import { SEVERITIES, type Severity } from '../../config/rules-schema.js';

const MAX_LIMIT = 10_000;

interface ListQuery {
  status?: AlertStatus;
  severity?: Severity;
  limit?: number;
}

const noteBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { note: { type: 'string', maxLength: 1000 } },
} as const;

export function registerAlertRoutes(app: FastifyInstance, alerts: AlertStore): void {
  app.get<{ Querystring: ListQuery }>(
    '/api/v1/alerts',
    {
      config: { minRole: 'viewer' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...ALERT_STATUSES] },
            severity: { type: 'string', enum: [...SEVERITIES] },
            limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 100 },
          },
        },
      },
    },
    async (req) => {
      const { status, severity, limit } = req.query;
      return { alerts: await alerts.list({ ...(status ? { status } : {}), ...(severity ? { severity } : {}), limit: limit ?? 100 }) };
    },
  );

  app.get<{ Params: { id: string } }>('/api/v1/alerts/:id', { config: { minRole: 'viewer' } }, async (req, reply) => {
    const alert = await alerts.get(req.params.id);
    return alert ?? reply.code(404).send({ error: `no alert "${req.params.id}"` });
  });

  for (const action of ['acknowledge', 'resolve'] as const) {
    app.post<{ Params: { id: string }; Body: { note?: string } | undefined }>(
      `/api/v1/alerts/:id/${action}`,
      { config: { minRole: 'operator', idempotent: true }, schema: { body: noteBody } },
      async (req) => {
        const by = req.identity!.name;
        const note = req.body?.note;
        return action === 'acknowledge' ? alerts.acknowledge(req.params.id, by, note) : alerts.resolve(req.params.id, by, note);
      },
    );
  }
}
