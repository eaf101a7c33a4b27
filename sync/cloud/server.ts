// The cloud API process: fastify with raw-body parsers (HMAC signs the exact bytes), the
// two authentication hooks, both route sets, and a clean stop (requests drain, then the
// DuckDB file is checkpointed and closed).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from '../../gateway/kernel/log.js';
import { H, PARQUET_MEDIA_TYPE } from '../protocol.js';
import {
  GatewayAuthenticator,
  loadOfficeTokens,
  roleAllows,
  type GatewayHeaderOk,
  type OfficeIdentity,
  type OfficeTokens,
} from './auth.js';
import type { CloudConfig } from './config.js';
import { DuckDbCloudStore } from './duckdb-store.js';
import { QueueFullError } from './keyed-queue.js';
import { CloudMetrics } from './metrics.js';
import { registerGatewayRoutes } from './routes-gateway.js';
import { registerOfficeRoutes } from './routes-office.js';
import { CloudRequestError, type CloudStore, type GatewayCredentials } from './store.js';
import { QueryError } from '../../gateway/kernel/query-params.js';
import type { Role } from '../../gateway/kernel/schema-kit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact request body bytes (empty when there was none). */
    rawBody?: Buffer;
    /** Set on gatewayAuth routes once the signature checked out. */
    gateway?: GatewayCredentials;
    gatewayHeader?: GatewayHeaderOk;
    office?: OfficeIdentity;
  }
  interface FastifyContextConfig {
    /** HMAC-signed gateway route. */
    gatewayAuth?: boolean;
    /** The route records last_seen itself. */
    skipTouch?: boolean;
    /** Office route: least role allowed. */
    officeRole?: Role;
  }
}

export interface CloudServer {
  app: FastifyInstance;
  url: string;
  port: number;
  store: CloudStore;
  /** <dataDir>/admin.token when no office tokens are configured. */
  adminTokenFile: string | null;
  close(): Promise<void>;
}

const JSON_BODY_LIMIT = 1024 * 1024;

// JSON that also keeps its bytes; __proto__ keys are dropped (prototype poisoning).
function parseJsonKeepingRaw(req: FastifyRequest, body: Buffer, done: (err: Error | null, value?: unknown) => void): void {
  req.rawBody = body;
  if (body.length === 0) return done(null, undefined);
  try {
    done(
      null,
      JSON.parse(body.toString('utf8'), (k, v: unknown) => (k === '__proto__' ? undefined : v)),
    );
  } catch (err) {
    done(new CloudRequestError(400, `body: invalid JSON (${(err as Error).message})`));
  }
}

function buildApp(
  config: CloudConfig,
  store: CloudStore,
  tokens: OfficeTokens,
  log: Logger,
  metrics = new CloudMetrics(),
): FastifyInstance {
  const https = config.http.tls ? { https: { cert: readFileSync(config.http.tls.cert), key: readFileSync(config.http.tls.key) } } : {};
  // Request logging off: ingest runs several times a second per gateway; errors are logged below.
  const app = Fastify({ logger: false, bodyLimit: JSON_BODY_LIMIT, ajv: { customOptions: { removeAdditional: false } }, ...https });
  const gateways = new GatewayAuthenticator(store);

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJsonKeepingRaw);
  app.addContentTypeParser(PARQUET_MEDIA_TYPE, { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    req.rawBody = body;
    done(null, body);
  });

  const refuse = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });

  app.addHook('onRequest', async (req, reply) => {
    const cfg = req.routeOptions.config;
    if (cfg.gatewayAuth) {
      const r = await gateways.checkHeader(req.headers[H.auth]);
      if ('error' in r) {
        if (r.serverTime !== undefined) void reply.header(H.serverTime, String(r.serverTime));
        return refuse(reply, 401, r.error);
      }
      req.gatewayHeader = r;
      return;
    }
    const need = cfg.officeRole;
    if (!need) return;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const identity = m ? tokens.verify(m[1]) : undefined;
    if (!identity)
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: m ? 'authorization: invalid token' : 'authorization: missing bearer token' });
    if (!roleAllows(identity.role, need)) return refuse(reply, 403, `role "${identity.role}" may not do this; needs "${need}" or higher`);
    req.office = identity;
  });

  // After the body is read, before schema validation: an unsigned body is never looked at.
  app.addHook('preValidation', async (req, reply) => {
    const header = req.gatewayHeader;
    if (!header) return;
    const keyHeader = req.headers[H.idempotencyKey];
    const key = typeof keyHeader === 'string' ? keyHeader : '';
    const fail = gateways.checkSignature(header, req.method, req.url, key, req.rawBody ?? Buffer.alloc(0));
    if (fail) return refuse(reply, 401, fail.error);
    req.gateway = header.gateway;
    if (!req.routeOptions.config.skipTouch) await gateways.touch(header.gateway.id);
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof QueueFullError) return reply.code(503).header('retry-after', '1').send({ error: err.message });
    const status = err instanceof QueryError ? 400 : (err.statusCode ?? 500);
    if (status >= 500) log.error({ err, url: req.url }, 'cloud API error');
    if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply
        .code(415)
        .send({ error: `content-type: must be ${req.url.startsWith('/api/v1/ingest') ? PARQUET_MEDIA_TYPE : 'application/json'}` });
    }
    if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = req.url.startsWith('/api/v1/ingest')
        ? `limits.maxBatchBytes (${config.limits.maxBatchBytes} bytes)`
        : `${JSON_BODY_LIMIT} bytes`;
      return reply.code(413).send({ error: `body: larger than ${limit}` });
    }
    return reply.code(status).send({ error: status >= 500 ? `internal error: ${err.message}` : err.message });
  });

  // Route patterns (not raw URLs) keep the label set bounded; unmatched paths share one label.
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.get('/metrics', { config: { officeRole: 'viewer' } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  registerGatewayRoutes(app, store, config, log, metrics);
  registerOfficeRoutes(app, store, config, log);
  return app;
}

/** Opens the store, seeds bootstrap tokens, listens; `close()` drains and closes everything. */
export async function startCloudServer(config: CloudConfig, log: Logger): Promise<CloudServer> {
  const dataDir = resolve(config.dataDir);
  const store = await DuckDbCloudStore.open({
    path: join(dataDir, config.db.file),
    tmpDir: join(dataDir, 'tmp'),
    memoryLimitMB: config.db.memoryLimitMB,
    ...(config.db.threads ? { threads: config.db.threads } : {}),
  });
  try {
    await store.seedEnrollmentTokens(
      config.enrollmentTokens.map((t) => ({
        sha256: t.sha256,
        site: t.site,
        ...(t.gatewayId !== undefined ? { gatewayId: t.gatewayId } : {}),
        expiresAt: t.expiresAt !== undefined ? Date.parse(t.expiresAt) : null,
        createdBy: 'config',
      })),
    );
    const tokens = loadOfficeTokens(config.tokens, dataDir, log);
    const app = buildApp(config, store, tokens, log);
    await app.listen({ host: config.http.host, port: config.http.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
    const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
    const url = `${config.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    log.info({ url, dataDir }, 'cloud API listening');
    let closing: Promise<void> | null = null;
    return {
      app,
      url,
      port,
      store,
      adminTokenFile: tokens.adminTokenFile,
      close: () =>
        (closing ??= (async () => {
          await app.close();
          await store.close();
        })()),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
