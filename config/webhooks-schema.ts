// The site file's `webhooks:` section: endpoints that get committed events as signed
// CloudEvents (Standard Webhooks headers), delivered durably by gateway/webhooks/.
import { Type, type Static } from '@sinclair/typebox';
import { Id, Section, Strict } from '../gateway/kernel/schema-kit.js';

export const DEFAULT_RETRY_SCHEDULE_MS = [1000, 5000, 25000, 125000, 625000];

export const WebhookEndpointSchema = Strict({
  id: Id('Endpoint id, unique; named by metrics, the DLQ and rules (`webhook: { endpoint: <id> }`)'),
  url: Type.String({ pattern: '^https?://', description: 'Where deliveries are POSTed' }),
  secretEnv: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'Environment variable holding the signing secret (whsec_<base64> or plain text)',
    }),
  ),
  secretFile: Type.Optional(Type.String({ description: 'File holding the signing secret, relative to dataDir; give this or secretEnv' })),
  types: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: "Event types sent, as globs ('alert.*', 'access.*', '*'); empty: none (rules may still name the endpoint)",
  }),
  headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra request headers' })),
  timeoutMs: Type.Integer({ minimum: 100, maximum: 120000, default: 10000, description: 'Per attempt' }),
  concurrency: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Attempts in flight at once to this endpoint' }),
});
export type WebhookEndpoint = Static<typeof WebhookEndpointSchema>;

export const WebhooksSchema = Section(
  {
    endpoints: Type.Array(WebhookEndpointSchema, { default: [] }),
    retryScheduleMs: Type.Array(Type.Integer({ minimum: 1 }), {
      default: DEFAULT_RETRY_SCHEDULE_MS,
      minItems: 1,
      maxItems: 20,
      description: 'Wait before each retry (±10 % jitter); after the last one fails the delivery is dead. Change only for tests',
    }),
    maxPendingPerEndpoint: Type.Integer({
      minimum: 1,
      default: 100000,
      description: 'Pending deliveries kept per endpoint; past it the oldest are moved to the dead-letter queue',
    }),
    maxDeadPerEndpoint: Type.Integer({
      minimum: 1,
      default: 100000,
      description: 'Dead deliveries kept per endpoint; the oldest go first',
    }),
  },
  'Outbound webhooks: durable, signed, retried deliveries of committed events',
);
export type WebhooksConfig = Static<typeof WebhooksSchema>;
