// Gateway-facing routes: enrollment (token-authenticated) and the HMAC-signed rest —
// ingest, status, command queue and desired config. Authentication itself runs in the
// server's hooks (routes marked `gatewayAuth`), which leave the caller in req.gateway.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex } from '../../gateway/kernel/secrets.js';
import {
  H,
  PARQUET_MEDIA_TYPE,
  batchKey,
  isStream,
  type CommandAck,
  type EnrollRequest,
  type EnrollResponse,
  type GatewayStatusReport,
  type IngestResponse,
} from '../protocol.js';
import type { Logger } from '../../gateway/kernel/log.js';
import type { CloudConfig } from './config.js';
import { KeyedQueue } from './keyed-queue.js';
import { CloudRequestError, type CloudStore, type ConfigAck, type GatewayCredentials } from './store.js';
import type { CloudMetrics } from './metrics.js';

const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const MAX_PENDING_COMMANDS = 100;

const bad = (status: number, message: string) => new CloudRequestError(status, message);

function me(req: FastifyRequest): GatewayCredentials {
  if (!req.gateway) throw bad(401, 'authorization: missing'); // unreachable: the hook sets it
  return req.gateway;
}

function intHeader(req: FastifyRequest, name: string, min: number): number {
  const raw = req.headers[name];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) throw bad(400, `${name}: must be an integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw bad(400, `${name}: must be an integer >= ${min}`);
  return n;
}

export function registerGatewayRoutes(
  app: FastifyInstance,
  store: CloudStore,
  config: CloudConfig,
  log: Logger,
  metrics: CloudMetrics,
): void {
  const limits = config.limits;
  // Bounds the batches waiting per (gateway, stream); the store orders commits itself.
  const ingestQueue = new KeyedQueue(limits.maxQueuedBatches);
  let ingestsInFlight = 0;

  app.post<{ Body: EnrollRequest }>(
    '/api/v1/enroll',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['token', 'gatewayId', 'site'],
          properties: {
            token: { type: 'string', minLength: 1, maxLength: 512 },
            gatewayId: { type: 'string', pattern: ID_PATTERN },
            site: { type: 'string', pattern: ID_PATTERN },
            name: { type: 'string', maxLength: 200 },
          },
        },
      },
    },
    async (req): Promise<EnrollResponse> => {
      const { token, gatewayId, site, name } = req.body;
      const secret = randomBytes(32).toString('base64url');
      await store.enroll({ tokenSha256: sha256Hex(token), gatewayId, site, ...(name !== undefined ? { name } : {}), secret });
      log.info({ gatewayId, site }, 'gateway enrolled');
      return { gatewayId, site, secret };
    },
  );

  app.post(
    '/api/v1/ingest',
    {
      bodyLimit: limits.maxBatchBytes,
      config: { gatewayAuth: true, skipTouch: true },
      // Counted before the body is buffered, so many senders cannot exhaust memory.
      onRequest: async (_req: FastifyRequest, reply: FastifyReply) => {
        if (ingestsInFlight >= limits.maxConcurrentIngests) {
          return reply
            .code(503)
            .header('retry-after', '1')
            .send({ error: `ingest: ${ingestsInFlight} batches in flight (limits.maxConcurrentIngests); retry shortly` });
        }
        ingestsInFlight++;
        reply.raw.once('close', () => ingestsInFlight--);
      },
    },
    async (req): Promise<IngestResponse> => {
      const gw = me(req);
      if (!Buffer.isBuffer(req.body)) throw bad(415, `content-type: must be ${PARQUET_MEDIA_TYPE}`);
      const stream = req.headers[H.stream];
      if (!isStream(stream)) throw bad(400, `${H.stream}: must be one of priority, events, telemetry`);
      const first = intHeader(req, H.firstSeq, 1);
      const last = intHeader(req, H.lastSeq, 1);
      const rows = intHeader(req, H.rows, 1);
      if (last < first) throw bad(400, `${H.lastSeq}: must not be less than ${H.firstSeq} (${first})`);
      if (rows > last - first + 1) throw bad(400, `${H.rows}: ${rows} rows cannot have distinct seq numbers in ${first}..${last}`);
      const key = req.headers[H.idempotencyKey];
      if (typeof key !== 'string' || key === '') throw bad(400, `${H.idempotencyKey}: required`);
      if (key.split(':')[0] !== gw.id) throw bad(403, `${H.idempotencyKey}: batch belongs to another gateway`);
      const want = batchKey(gw.id, stream, first, last);
      if (key !== want) throw bad(400, `${H.idempotencyKey}: must be "${want}" for these headers`);
      if (rows > limits.maxBatchRows) throw bad(413, `${H.rows}: ${rows} exceeds limits.maxBatchRows (${limits.maxBatchRows})`);
      const ack = await ingestQueue.run(`${gw.id}:${stream}`, () =>
        store.ingest({ gatewayId: gw.id, site: gw.site, stream, firstSeq: first, lastSeq: last, rows, body: req.body as Buffer }),
      );
      metrics.ingestBatches.inc({ stream, result: ack.duplicate ? 'duplicate' : 'new' });
      metrics.ingestRows.inc({ stream }, ack.inserted);
      return ack;
    },
  );

  app.post<{ Body: GatewayStatusReport }>(
    '/api/v1/gateways/me/status',
    {
      config: { gatewayAuth: true, skipTouch: true },
      schema: {
        body: {
          type: 'object',
          required: ['version', 'at', 'streams'],
          properties: {
            version: { type: 'string' },
            at: { type: 'number' },
            streams: { type: 'object', additionalProperties: { type: 'object', properties: { dropped: { type: 'number' } } } },
            lastSuccessAt: { type: ['number', 'null'] },
            lastError: { type: ['string', 'null'] },
          },
        },
      },
    },
    async (req, reply) => {
      await store.setStatus(me(req).id, req.body);
      return reply.code(204).send();
    },
  );

  app.get('/api/v1/gateways/me/commands', { config: { gatewayAuth: true } }, async (req) => ({
    commands: await store.pendingCommands(me(req).id, MAX_PENDING_COMMANDS),
  }));

  app.post<{ Params: { id: string }; Body: CommandAck }>(
    '/api/v1/gateways/me/commands/:id/ack',
    {
      config: { gatewayAuth: true },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ok'],
          properties: { ok: { type: 'boolean' }, detail: { type: 'string', maxLength: 4000 } },
        },
      },
    },
    async (req, reply) => {
      if (!(await store.ackCommand(me(req).id, req.params.id, req.body)))
        throw bad(404, `command "${req.params.id}": no such command for this gateway`);
      return reply.code(204).send();
    },
  );

  app.get('/api/v1/gateways/me/config', { config: { gatewayAuth: true } }, async (req, reply) => {
    const desired = await store.desiredConfig(me(req).id);
    return desired ? desired : reply.code(204).send();
  });

  app.post<{ Body: ConfigAck }>(
    '/api/v1/gateways/me/config/ack',
    {
      config: { gatewayAuth: true },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['version', 'ok'],
          properties: { version: { type: 'integer', minimum: 1 }, ok: { type: 'boolean' }, detail: { type: 'string', maxLength: 4000 } },
        },
      },
    },
    async (req, reply) => {
      if (!(await store.ackDesiredConfig(me(req).id, req.body)))
        throw bad(404, `version: no desired config version ${req.body.version} for this gateway`);
      return reply.code(204).send();
    },
  );
}
