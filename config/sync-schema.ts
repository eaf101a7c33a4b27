// The site file's `sync:` section: how the gateway uploads its store to the cloud API.
import { Type, type Static } from '@sinclair/typebox';
import { ROLES, Section, StringEnum } from '../gateway/kernel/schema-kit.js';

export const SyncSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    url: Type.Optional(
      Type.String({ pattern: '^https?://', description: 'Cloud API base URL; default: the one enrolled with (`outpost enroll`)' }),
    ),
    credentialsFile: Type.String({
      default: 'cloud-credentials.json',
      description: 'Written by `outpost enroll` (mode 0600), relative to dataDir',
    }),
    batchRows: Type.Integer({ minimum: 1, maximum: 500000, default: 50000, description: 'Most rows in one upload batch' }),
    idleMs: Type.Integer({
      minimum: 10,
      default: 1000,
      description: 'With nothing to send, look for new rows this often (new commits also wake the uploader)',
    }),
    maxBytesPerSecond: Type.Integer({
      minimum: 0,
      default: 0,
      description: 'Upload bandwidth cap for metered links (0: none); a batch waits until the cap allows it',
    }),
    retry: Section(
      {
        initialMs: Type.Integer({ minimum: 10, default: 1000 }),
        maxMs: Type.Integer({
          minimum: 10,
          default: 300000,
          description: 'Backoff cap (each wait is jittered between half and all of the exponential step)',
        }),
        openAfterFailures: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures that open the circuit' }),
      },
      'Failed uploads are retried for ever, with exponential backoff; a Retry-After from the cloud is honoured',
    ),
    timeouts: Section(
      {
        connectMs: Type.Integer({ minimum: 100, default: 10000 }),
        headersMs: Type.Integer({ minimum: 100, default: 30000, description: 'Until the response headers arrive' }),
        bodyMs: Type.Integer({ minimum: 100, default: 30000, description: 'Between body chunks' }),
      },
      'HTTP timeouts (undici)',
    ),
    tls: Section(
      {
        caFile: Type.Optional(Type.String({ description: 'Extra CA certificate (PEM) to trust for the cloud' })),
        insecureSkipVerify: Type.Boolean({ default: false, description: 'Never in production: skips TLS certificate checks' }),
      },
      'TLS to the cloud: verified against the system CAs by default',
    ),
    statusEveryMs: Type.Integer({
      minimum: 1000,
      default: 15000,
      description: 'How often the backlog/dropped status is reported upstream',
    }),
    commands: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'Fetch and apply commands queued by the cloud (lock/unlock, point writes)' }),
        pollMs: Type.Integer({ minimum: 200, default: 5000 }),
        role: StringEnum(ROLES, { default: 'operator', description: 'Role of the "cloud" identity for commands' }),
        doorGroups: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description: 'Lock groups cloud commands may operate ("*": all); as for API tokens',
        }),
      },
      'Downlink commands; they pass the same RBAC and audit as local ones, as identity "cloud"',
    ),
  },
  'Upstream sync to the cloud API (sync/README.md)',
);
export type SyncConfig = Static<typeof SyncSchema>;
