// Config schema of the HTTP driver (drivers.http) and of an HTTP device (devices[].http):
// how a device that POSTs proves who it is, and, for equipment that cannot change its
// JSON, a mapping from paths in its body to points.
import { Type, type Static } from '@sinclair/typebox';
import { Section, Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';
import { MappingSchema } from '../payloads/mapping.js';

/** The largest body any configuration accepts (fastify stops reading past it). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export const HttpDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    maxBodyBytes: Type.Integer({ minimum: 1024, maximum: MAX_BODY_BYTES, default: 1024 * 1024, description: 'Larger bodies get 413' }),
    maxReadingsPerRequest: Type.Integer({ minimum: 1, default: 10_000, description: 'More readings in one request get 413' }),
    requestsPerMinute: Type.Integer({ minimum: 1, default: 600, description: 'Per device; more get 429 with Retry-After' }),
    maxConcurrentPolls: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 8,
      description: 'Polls in flight at once, all devices together',
    }),
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

/** Credentials Outpost sends when it calls the device (polling, writes). */
const ClientAuth = Strict(
  {
    basic: Type.Optional(Strict({ username: Type.String(), passwordEnv: Type.String({ minLength: 1 }) })),
    bearerEnv: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the token' })),
  },
  { description: 'How Outpost authenticates to the device' },
);
export type HttpClientAuth = Static<typeof ClientAuth>;

const Headers = Type.Record(Type.String(), Type.String(), { default: {} });

const Poll = Strict(
  {
    url: Type.String({ pattern: '^https?://', description: 'The page to read' }),
    method: StringEnum(['GET', 'POST'] as const, { default: 'GET' }),
    headers: Headers,
    auth: Type.Optional(ClientAuth),
    intervalS: Type.Number({ minimum: 0.1, default: 60, description: 'Seconds between polls' }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
    offlineAfterFailures: Type.Integer({ minimum: 1, default: 3, description: 'Failed polls in a row before device.offline' }),
    format: StringEnum(['json', 'text'] as const, { default: 'json' }),
    /** text: point → a regular expression whose first group is the value. */
    patterns: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$' }), Type.String({ minLength: 1 }))),
  },
  { description: 'Outpost polls the device: JSON (decoded like a push, or through `mapping`) or text (regex per point)' },
);
export type HttpPollConfig = Static<typeof Poll>;

const Write = Strict(
  {
    url: Type.String({ pattern: '^https?://', description: 'May contain {{point}} and {{value}}' }),
    method: StringEnum(['POST', 'PUT', 'GET'] as const, { default: 'POST' }),
    headers: Headers,
    auth: Type.Optional(ClientAuth),
    body: Type.Optional(Type.String({ description: 'Request body template, e.g. {"relay": {{value}}}' })),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
  },
  { description: 'A write command as an HTTP request (an HTTP relay driven by rules or the lock API)' },
);
export type HttpWriteConfig = Static<typeof Write>;

export const HttpDeviceSchema = Strict(
  { auth: Type.Optional(Auth), mapping: Type.Optional(MappingSchema), poll: Type.Optional(Poll), write: Type.Optional(Write) },
  { description: 'A device that POSTs JSON (auth), is polled (poll), takes writes (write), or all of these' },
);
export type HttpDeviceConfig = Static<typeof HttpDeviceSchema>;
