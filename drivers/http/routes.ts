// POST /ingest/v1/{device}: the push side of HTTP devices, on the local API's listener.
// It is not behind API tokens (minRole): the device authenticates as itself (auth.ts). The
// body arrives raw (an HMAC signs the exact bytes); fastify stops reading past the schema's
// largest maxBodyBytes, the driver refuses past the configured one (both 413, counted).
import type { FastifyError, FastifyInstance } from 'fastify';
import type {} from '../../gateway/contract/api.js';
import type { HttpDriver } from './driver.js';
import { MAX_BODY_BYTES } from './schema.js';

export function registerHttpRoutes(app: FastifyInstance, driver: () => HttpDriver | undefined): void {
  void app.register(async (scope) => {
    // Raw bytes for every content type, in this scope only.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.statusCode === 413) driver()?.tooLarge();
      return reply.code(err.statusCode ?? 500).send({ error: err.message });
    });
    scope.post<{ Params: { device: string } }>('/ingest/v1/:device', { bodyLimit: MAX_BODY_BYTES }, async (req, reply) => {
      const d = driver();
      if (!d) return reply.code(503).send({ error: 'the HTTP driver is not enabled' });
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const a = await d.push(req.params.device, req.headers, body);
      if (a.retryAfterS !== undefined) void reply.header('retry-after', String(a.retryAfterS));
      return reply.code(a.status).send(a.body);
    });
  });
}
