// Routes of the local API. Times accept epoch ms, ISO-8601 or relative (-15m, -2h, -1d).
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../gateway.js';
import { QueryError, parseTime, queryBuckets, queryEvents, queryReadings, readOnlySql, withConnection } from '../store/queries.js';

const MAX_LIMIT = 50_000;

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

export function registerRoutes(app: FastifyInstance, gw: Gateway): void {
  let runningQueries = 0;
  // 200 only when the gateway is ready and every driver runs: a driver in restart backoff
  // (e.g. its port is taken) makes the gateway unhealthy for probes and installers.
  app.get('/health', async (_req, reply) => {
    const ready = gw.phase === 'ready';
    const down = ready ? Object.entries(gw.supervisor.status()).filter(([, d]) => d.state !== 'running') : [];
    const status = !ready ? gw.phase : down.length > 0 ? 'degraded' : 'ok';
    return reply.code(status === 'ok' ? 200 : 503).send({
      status,
      site: gw.config.site,
      ...(down.length > 0 ? { driversDown: Object.fromEntries(down.map(([name, d]) => [name, d.lastError])) } : {}),
    });
  });

  app.get('/metrics', async (_req, reply) => {
    return reply.type(gw.metrics.registry.contentType).send(await gw.metrics.registry.metrics());
  });

  app.get('/api/v1/status', { config: { minRole: 'viewer' } }, async () => gw.status());

  app.get('/api/v1/devices', { config: { minRole: 'viewer' } }, async () => ({ devices: gw.devices.list() }));

  // Upload backlog, circuit and last error: what `outpost sync status` prints.
  app.get('/api/v1/sync', { config: { minRole: 'viewer' } }, async () => (gw.sync ? gw.sync.status() : { enabled: false }));

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
        if (q.bucket) return { bucket: q.bucket, buckets: await queryBuckets(gw.db.instance, filter, q.bucket) };
        return { readings: await queryReadings(gw.db.instance, filter) };
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
        return { events: await queryEvents(gw.db.instance, filter) };
      }),
  );

  // Commands are audited as events whatever the outcome.
  app.post<{ Params: { id: string }; Body: { action: string; args?: Record<string, unknown> } }>(
    '/api/v1/devices/:id/commands',
    {
      config: { minRole: 'operator', idempotent: true },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action'],
          properties: { action: { type: 'string', minLength: 1 }, args: { type: 'object' } },
        },
      },
    },
    async (req, reply) => {
      const cmd = {
        id: randomUUID(),
        device: req.params.id,
        action: req.body.action,
        ...(req.body.args ? { args: req.body.args } : {}),
        requestedBy: `api:${req.identity?.name ?? 'unknown'}`,
      };
      const result = await gw.supervisor.write(cmd);
      await gw.emitEvent(result.ok ? 'command.sent' : 'command.failed', 'api', { ...cmd, detail: result.detail }, cmd.device);
      return reply.code(result.ok ? 202 : 409).send({ id: cmd.id, ...result });
    },
  );

  app.post<{ Body: { sql: string; maxRows?: number } }>(
    '/api/v1/query',
    {
      config: { minRole: 'admin' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['sql'],
          properties: { sql: { type: 'string', minLength: 1 }, maxRows: { type: 'integer', minimum: 1, maximum: MAX_LIMIT } },
        },
      },
    },
    async (req, reply) => {
      const limits = gw.config.http.query;
      const who = req.identity!;
      const started = performance.now();
      const audit = (outcome: string, extra: Record<string, unknown>) => {
        gw.metrics.sqlQueries.inc({ outcome });
        return gw.emitEvent('audit.query', 'api', { by: who.name, role: who.role, via: 'api', remote: req.ip, sql: req.body.sql, outcome, durationMs: Math.round(performance.now() - started), ...extra });
      };
      if (runningQueries >= limits.maxConcurrent) {
        await audit('busy', { rows: 0 });
        return reply.code(429).header('retry-after', 1).send({ error: `${runningQueries} queries are running (http.query.maxConcurrent); try again shortly` });
      }
      runningQueries++;
      try {
        const maxRows = Math.min(req.body.maxRows ?? limits.maxRows, MAX_LIMIT);
        const result = await withConnection(gw.db.instance, (c) => readOnlySql(c, req.body.sql, maxRows, { timeoutMs: limits.timeoutMs }));
        await audit('ok', { rows: result.rows.length, truncated: result.truncated });
        return result;
      } catch (err) {
        const msg = (err as Error).message;
        const outcome = msg.startsWith('refused') ? 'refused' : msg.startsWith('interrupted') ? 'timeout' : 'error';
        await audit(outcome, { rows: 0, error: msg.slice(0, 500) });
        if (err instanceof QueryError) throw Object.assign(err, { statusCode: 400 });
        throw err;
      } finally {
        runningQueries--;
      }
    },
  );
}
