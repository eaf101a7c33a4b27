// The cloud API's own config file (not a site config): where it listens, where its DuckDB
// lives, office tokens, bootstrap enrollment tokens and limits. Errors name the file,
// line and key (`cloud.yaml:4:3 limits.maxBatchRows: must be >= 1`), like site configs.
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { Id, Section, Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';
import { parseYamlConfig, readConfigText, type CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import { Role } from '../../gateway/kernel/schema-kit.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const Sha256 = (description: string) => Type.String({ pattern: '^[0-9a-f]{64}$', description });

const CloudConfigSchema = Strict(
  {
    $schema: Type.Optional(Type.String()),
    dataDir: Type.String({
      default: './cloud-data',
      description: 'DuckDB file, admin token, temp files (relative to the working directory)',
    }),
    log: Section({ level: StringEnum(LOG_LEVELS, { default: 'info', description: 'Overridden by OUTPOST_LOG_LEVEL' }) }, 'Logging'),
    http: Section(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443, description: '0 picks a free port' }),
        tls: Type.Optional(
          Strict(
            { cert: Type.String({ description: 'PEM certificate file' }), key: Type.String({ description: 'PEM private key file' }) },
            { description: 'Serve HTTPS directly; otherwise put a TLS proxy in front (enrollment returns secrets)' },
          ),
        ),
      },
      'HTTP listener',
    ),
    tokens: Type.Array(
      Strict({ name: Type.String({ minLength: 1 }), role: Role, sha256: Sha256('the sha256 printed by `outpost token create`') }),
      {
        default: [],
        description: 'Central-office bearer tokens; empty: an admin token is generated into dataDir/admin.token',
      },
    ),
    enrollmentTokens: Type.Array(
      Strict({
        sha256: Sha256('sha256 of a one-time enrollment token (`outpost cloud-token --offline`)'),
        site: Id('Site the enrolling gateway must belong to'),
        gatewayId: Type.Optional(Id('Only this gateway id may enroll with it')),
        expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'ISO-8601; no expiry when absent' })),
      }),
      { default: [], description: 'Bootstrap enrollment tokens (each usable once)' },
    ),
    db: Section(
      {
        file: Type.String({ default: 'cloud.duckdb', description: 'Relative to dataDir' }),
        memoryLimitMB: Type.Integer({ minimum: 64, default: 1024 }),
        threads: Type.Optional(Type.Integer({ minimum: 1, description: "DuckDB worker threads (default: DuckDB's, one per core)" })),
      },
      'DuckDB storage',
    ),
    limits: Section(
      {
        maxBatchBytes: Type.Integer({ minimum: 1024, default: 32 * 1024 * 1024, description: 'Larger ingest bodies get 413' }),
        maxBatchRows: Type.Integer({ minimum: 1, default: 500_000, description: 'Batches with more rows get 413' }),
        maxQueuedBatches: Type.Integer({ minimum: 1, default: 4, description: 'Per gateway and stream; past it 503 + Retry-After' }),
        maxConcurrentIngests: Type.Integer({
          minimum: 1,
          default: 32,
          description: 'Ingest bodies buffered at once (all gateways); past it 503',
        }),
        maxQueryRows: Type.Integer({ minimum: 1, default: 100_000, description: 'Upper bound of limit= on readings/events' }),
        maxExportRows: Type.Integer({
          minimum: 1,
          default: 5_000_000,
          description: 'Rows per export file; larger results are cut (x-outpost-truncated)',
        }),
        enrollmentTokenTtlSeconds: Type.Integer({
          minimum: 60,
          default: 86_400,
          description: 'Default lifetime of minted enrollment tokens',
        }),
        commandTtlSeconds: Type.Integer({
          minimum: 1,
          default: 3600,
          description: 'Commands not fetched by then are not delivered (status "expired")',
        }),
      },
      'Bounds',
    ),
  },
  { title: 'Outpost cloud API configuration' },
);

export type CloudConfig = Static<typeof CloudConfigSchema>;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
// date-time is the only format used; a full ajv-formats would be a new dependency.
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s) });
const validate = ajv.compile<CloudConfig>(CloudConfigSchema);

export function loadCloudConfigFile(path: string): CloudConfig {
  return parseCloudConfig(readConfigText(path), path);
}

/** Parses, validates and fills defaults; `file` only labels errors. */
export function parseCloudConfig(text: string, file: string): CloudConfig {
  return parseYamlConfig(text, file, validate, duplicateTokens);
}

function duplicateTokens(cfg: CloudConfig): CrossCheckProblem[] {
  const out: CrossCheckProblem[] = [];
  const message = 'the same token is listed twice';
  const seen = new Set<string>();
  cfg.tokens.forEach((t, i) => (seen.has(t.sha256) ? out.push({ path: ['tokens', i, 'sha256'], message }) : seen.add(t.sha256)));
  const seenEnroll = new Set<string>();
  cfg.enrollmentTokens.forEach((t, i) =>
    seenEnroll.has(t.sha256) ? out.push({ path: ['enrollmentTokens', i, 'sha256'], message }) : seenEnroll.add(t.sha256),
  );
  return out;
}
