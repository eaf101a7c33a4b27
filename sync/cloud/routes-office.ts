// Central-office routes (bearer token, role per route): fleet overview, data queries and
// export, commands, desired config and enrollment tokens. Times accept epoch ms, ISO-8601
// or relative (-15m, -2h, -1d).
import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError, parseConfig } from '../../config/site.js';
import { newApiToken, sha256Hex } from '../../gateway/kernel/secrets.js';
import { PARQUET_MEDIA_TYPE } from '../protocol.js';
import { validateCommand } from './commands.js';
import type { Logger } from '../../gateway/kernel/log.js';
import type { CloudConfig } from './config.js';
import { CloudRequestError, type CloudStore } from './store.js';
import { parseBucket, parseTime } from '../../gateway/kernel/query-params.js';

const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const bad = (status: number, message: string) => new CloudRequestError(status, message);

interface DataQuery {
  site?: string;
  gateway?: string;
  device?: string;
  point?: string;
  type?: string;
  from?: string;
  to?: string;
  bucket?: string;
  limit?: number;
  stream?: 'telemetry' | 'events';
}

const str = { type: 'string', minLength: 1 } as const;
const querySchema = (props: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, properties: props });

function filters(q: DataQuery): { site?: string; gateway?: string; from?: number; to?: number } {
  return {
    ...(q.site !== undefined ? { site: q.site } : {}),
    ...(q.gateway !== undefined ? { gateway: q.gateway } : {}),
    ...(q.from !== undefined ? { from: parseTime(q.from, 'from') } : {}),
    ...(q.to !== undefined ? { to: parseTime(q.to, 'to') } : {}),
  };
}

const who = (req: FastifyRequest) => `office:${req.office?.name ?? 'unknown'}`;

export function registerOfficeRoutes(app: FastifyInstance, store: CloudStore, config: CloudConfig, log: Logger): void {
  const limits = config.limits;
  const limitProp = { type: 'integer', minimum: 1, maximum: limits.maxQueryRows, default: 1000 };
  const viewer = { officeRole: 'viewer' } as const;

  async function knownGateway(id: string): Promise<void> {
    if (!(await store.gatewayExists(id))) throw bad(404, `gateway "${id}": not enrolled`);
  }

  app.get('/health', async () => ({ ok: true }));

  app.get('/api/v1/gateways', { config: viewer }, async () => store.listGateways());

  app.get<{ Querystring: DataQuery }>(
    '/api/v1/readings',
    {
      config: viewer,
      schema: {
        querystring: querySchema({ site: str, gateway: str, device: str, point: str, from: str, to: str, bucket: str, limit: limitProp }),
      },
    },
    async (req) => {
      const q = req.query;
      const f = {
        ...filters(q),
        ...(q.device !== undefined ? { device: q.device } : {}),
        ...(q.point !== undefined ? { point: q.point } : {}),
        limit: q.limit ?? 1000,
      };
      if (q.bucket === undefined) return { readings: await store.readings(f) };
      parseBucket(q.bucket); // 400 before touching the store
      return { bucket: q.bucket, buckets: await store.readingBuckets(f, q.bucket) };
    },
  );

  const eventQuery = {
    config: viewer,
    schema: { querystring: querySchema({ site: str, gateway: str, type: str, from: str, to: str, limit: limitProp }) },
  };
  app.get<{ Querystring: DataQuery }>('/api/v1/events', eventQuery, async (req) => {
    const q = req.query;
    return { events: await store.events({ ...filters(q), ...(q.type !== undefined ? { type: q.type } : {}), limit: q.limit ?? 1000 }) };
  });

  app.get<{ Querystring: DataQuery }>('/api/v1/alerts', eventQuery, async (req) => {
    const q = req.query;
    if (q.type !== undefined && !q.type.startsWith('alert.')) throw bad(400, 'type: alerts are events whose type starts with "alert."');
    return { alerts: await store.events({ ...filters(q), type: q.type ?? 'alert.*', limit: q.limit ?? 1000 }) };
  });

  app.get<{ Querystring: DataQuery }>(
    '/api/v1/export',
    {
      config: viewer,
      schema: {
        querystring: querySchema({
          site: str,
          gateway: str,
          device: str,
          from: str,
          to: str,
          stream: { type: 'string', enum: ['telemetry', 'events'], default: 'telemetry' },
        }),
      },
    },
    async (req, reply) => {
      const q = req.query;
      const stream = q.stream ?? 'telemetry';
      const out = await store.exportParquet({
        ...filters(q),
        ...(q.device !== undefined ? { device: q.device } : {}),
        stream,
        maxRows: limits.maxExportRows,
      });
      const body = createReadStream(out.file);
      // Deleted once sent or when the client goes away, whichever ends the stream.
      body.once('close', () => void unlink(out.file).catch(() => undefined));
      return reply
        .type(PARQUET_MEDIA_TYPE)
        .header('content-disposition', `attachment; filename="outpost-${stream}-${new Date().toISOString().replace(/[:.]/g, '-')}.parquet"`)
        .header('x-outpost-rows', String(out.rows))
        .header('x-outpost-truncated', String(out.truncated))
        .send(body);
    },
  );

  app.post<{ Body: { site: string; gatewayId?: string; ttlSeconds?: number } }>(
    '/api/v1/enrollment-tokens',
    {
      config: { officeRole: 'admin' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['site'],
          properties: {
            site: { type: 'string', pattern: ID_PATTERN },
            gatewayId: { type: 'string', pattern: ID_PATTERN },
            ttlSeconds: { type: 'integer', minimum: 60, maximum: 30 * 86400 },
          },
        },
      },
    },
    async (req, reply) => {
      const { site, gatewayId } = req.body;
      const token = newApiToken().replace(/^opt_/, 'oet_');
      const expiresAt = Date.now() + (req.body.ttlSeconds ?? limits.enrollmentTokenTtlSeconds) * 1000;
      await store.addEnrollmentToken({
        sha256: sha256Hex(token),
        site,
        ...(gatewayId !== undefined ? { gatewayId } : {}),
        expiresAt,
        createdBy: who(req),
      });
      return reply
        .code(201)
        .send({ token, expiresAt: new Date(expiresAt).toISOString(), site, ...(gatewayId !== undefined ? { gatewayId } : {}) });
    },
  );

  app.post<{ Params: { id: string }; Body: { kind: string; args: unknown; ttlSeconds?: number } }>(
    '/api/v1/gateways/:id/commands',
    {
      config: { officeRole: 'operator' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'args'],
          properties: {
            kind: { type: 'string' },
            args: { type: 'object' },
            ttlSeconds: { type: 'integer', minimum: 1, maximum: 7 * 86400 },
          },
        },
      },
    },
    async (req, reply) => {
      const { kind, args } = validateCommand(req.body.kind, req.body.args);
      await knownGateway(req.params.id);
      const ttlSeconds = req.body.ttlSeconds ?? limits.commandTtlSeconds;
      const cmd = await store.addCommand({ gatewayId: req.params.id, kind, args, requestedBy: who(req), ttlSeconds });
      log.info({ gatewayId: req.params.id, id: cmd.id, kind, by: cmd.requestedBy }, 'command queued');
      return reply.code(201).send({ id: cmd.id });
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/v1/gateways/:id/commands',
    { config: viewer, schema: { querystring: querySchema({ limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }) } },
    async (req) => {
      await knownGateway(req.params.id);
      return { commands: await store.listCommands(req.params.id, req.query.limit ?? 100) };
    },
  );

  // Checked with the site schema first: a broken config is refused here, not on the gateway.
  app.put<{ Params: { id: string }; Body: { yaml: string } }>(
    '/api/v1/gateways/:id/config',
    {
      config: { officeRole: 'admin' },
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['yaml'], properties: { yaml: { type: 'string', minLength: 1 } } },
      },
    },
    async (req) => {
      const gw = await store.gatewayCredentials(req.params.id);
      if (!gw) throw bad(404, `gateway "${req.params.id}": not enrolled`);
      try {
        const site = parseConfig(req.body.yaml, 'yaml');
        if (site.site !== gw.site) throw bad(400, `yaml: site "${site.site}" does not match the gateway's site "${gw.site}"`);
      } catch (err) {
        if (err instanceof ConfigError) throw bad(400, err.message);
        throw err;
      }
      return { version: await store.putDesiredConfig(gw.id, req.body.yaml, who(req)) };
    },
  );
}
