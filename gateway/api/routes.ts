// Routes of the local API. Times accept epoch ms, ISO-8601 or relative (-15m, -2h, -1d).
import type { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import type {} from '../contract/api.js';
import type { DeviceState } from '../devices.js';
import { QueryError, parseTime } from '../kernel/query-params.js';
import { queryBuckets, queryEvents, queryReadings } from '../store/queries.js';

export const MAX_LIMIT = 50_000;

export interface ReadDeps {
  site: string;
  db: DuckDBInstance;
  /** The gateway's phase and the drivers that are not running (name → last error). */
  health(): { phase: string; driversDown: Record<string, string | null> };
  metricsText(): Promise<{ contentType: string; text: string }>;
  status(): unknown;
  devices(): DeviceState[];
  syncStatus(): unknown;
}

interface TimeQuery {
  from?: string;
  to?: string;
  limit?: number;
}

const timeProps = {
  from: { type: 'string' },
  to: { type: 'string' },
  limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 1000 },
} as const;

function timeRange(q: TimeQuery): { from?: number; to?: number } {
  return {
    ...(q.from !== undefined ? { from: parseTime(q.from, 'from') } : {}),
    ...(q.to !== undefined ? { to: parseTime(q.to, 'to') } : {}),
  };
}

// Bad filters are the caller's mistake: answer 400 with the message, not 500.
async function asBadRequest<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof QueryError) throw Object.assign(err, { statusCode: 400 });
    throw err;
  }
}

export function registerReadRoutes(app: FastifyInstance, deps: ReadDeps): void {
  // 200 only when the gateway is ready and every driver runs: a driver in restart backoff
  // (e.g. its port is taken) makes the gateway unhealthy for probes and installers.
  app.get('/health', async (_req, reply) => {
    const { phase, driversDown } = deps.health();
    const down = Object.keys(driversDown).length > 0;
    const status = phase !== 'ready' ? phase : down ? 'degraded' : 'ok';
    return reply.code(status === 'ok' ? 200 : 503).send({ status, site: deps.site, ...(down ? { driversDown } : {}) });
  });

  app.get('/metrics', async (_req, reply) => {
    const m = await deps.metricsText();
    return reply.type(m.contentType).send(m.text);
  });

  app.get('/api/v1/status', { config: { minRole: 'viewer' } }, async () => deps.status());

  app.get('/api/v1/devices', { config: { minRole: 'viewer' } }, async () => ({ devices: deps.devices() }));

  // Upload backlog, circuit and last error: what `outpost sync status` prints.
  app.get('/api/v1/sync', { config: { minRole: 'viewer' } }, async () => deps.syncStatus());

  app.get<{ Querystring: TimeQuery & { device?: string; point?: string; bucket?: string } }>(
    '/api/v1/readings',
    {
      config: { minRole: 'viewer' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { device: { type: 'string' }, point: { type: 'string' }, bucket: { type: 'string' }, ...timeProps },
        },
      },
    },
    async (req) =>
      asBadRequest(async () => {
        const q = req.query;
        const filter = {
          ...timeRange(q),
          ...(q.device ? { device: q.device } : {}),
          ...(q.point ? { point: q.point } : {}),
          limit: q.limit ?? 1000,
        };
        if (q.bucket) return { bucket: q.bucket, buckets: await queryBuckets(deps.db, filter, q.bucket) };
        return { readings: await queryReadings(deps.db, filter) };
      }),
  );

  app.get<{ Querystring: TimeQuery & { type?: string; source?: string } }>(
    '/api/v1/events',
    {
      config: { minRole: 'viewer' },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { type: { type: 'string' }, source: { type: 'string' }, ...timeProps },
        },
      },
    },
    async (req) =>
      asBadRequest(async () => {
        const q = req.query;
        const filter = {
          ...timeRange(q),
          ...(q.type ? { type: q.type } : {}),
          ...(q.source ? { source: q.source } : {}),
          limit: q.limit ?? 1000,
        };
        return { events: await queryEvents(deps.db, filter) };
      }),
  );
}
