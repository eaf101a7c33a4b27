// Config schema of the HTTP driver (drivers.http) and of an HTTP device (devices[].http):
// how a device that POSTs proves who it is, and, for equipment that cannot change its
// JSON, a mapping from paths in its body to points.
import { Type, type Static } from '@sinclair/typebox';
import { Section, Strict } from '../../gateway/kernel/schema-kit.js';
import { MappingSchema } from '../payloads/mapping.js';

/** The largest body any configuration accepts (fastify stops reading past it). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export const HttpDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: MAX_BODY_BYTES, default: 1024 * 1024, description: 'Larger bodies get 413' }),
    maxReadingsPerRequest: Type.Integer({ minimum: 1, default: 10_000, description: 'More readings in one request get 413' }),
    requestsPerMinute: Type.Integer({ minimum: 1, default: 600, description: 'Per device; more get 429 with Retry-After' }),
  },
  'HTTP devices: push ingest on the local API (POST /ingest/v1/{device})',
);
export type HttpDriverConfig = Static<typeof HttpDriverSchema>;

// Exactly one of the three (checked in index.ts: one object gives clearer errors than a union).
const Auth = Strict(
  {
    bearer: Type.Optional(
      Strict({ sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 (hex) of the token the device sends' }) }),
    ),
    basic: Type.Optional(
      Strict({ username: Type.String({ minLength: 1 }), passwordHash: Type.String({ description: 'From `outpost hash-password`' }) }),
    ),
    hmac: Type.Optional(
      Strict({
        secretEnv: Type.String({ minLength: 1, description: 'Environment variable holding the shared secret' }),
        toleranceS: Type.Integer({ minimum: 1, default: 300, description: 'How far the signed timestamp may be from now' }),
      }),
    ),
  },
  { description: 'How the device authenticates: bearer token, basic, or an HMAC-SHA256 signature of timestamp.body (one of them)' },
);
export type HttpAuth = Static<typeof Auth>;

export const HttpDeviceSchema = Strict({ auth: Auth, mapping: Type.Optional(MappingSchema) }, { description: 'A device that POSTs JSON' });
export type HttpDeviceConfig = Static<typeof HttpDeviceSchema>;
