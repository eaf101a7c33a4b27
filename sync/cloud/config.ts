// The cloud API's own config file (not a site config): where it listens, where its DuckDB
// lives, office tokens, bootstrap enrollment tokens and limits. Errors name the file,
// line and key (`cloud.yaml:4:3 limits.maxBatchRows: must be >= 1`), like site configs.
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isNode, parseDocument, type Document, type Node } from 'yaml';
import { Id, Section, Strict, StringEnum } from '../../config/schema-kit.js';
import { Role } from '../../config/schema.js';
import { ConfigError, formatPath, type ConfigProblem } from '../../gateway/config.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const Sha256 = (description: string) => Type.String({ pattern: '^[0-9a-f]{64}$', description });

export const CloudConfigSchema = Strict(
  {
    $schema: Type.Optional(Type.String()),
    dataDir: Type.String({ default: './cloud-data', description: 'DuckDB file, admin token, temp files (relative to the working directory)' }),
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
    tokens: Type.Array(Strict({ name: Type.String({ minLength: 1 }), role: Role, sha256: Sha256('the sha256 printed by `outpost token create`') }), {
      default: [],
      description: 'Central-office bearer tokens; empty: an admin token is generated into dataDir/admin.token',
    }),
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
        maxConcurrentIngests: Type.Integer({ minimum: 1, default: 32, description: 'Ingest bodies buffered at once (all gateways); past it 503' }),
        maxQueryRows: Type.Integer({ minimum: 1, default: 100_000, description: 'Upper bound of limit= on readings/events' }),
        maxExportRows: Type.Integer({ minimum: 1, default: 5_000_000, description: 'Rows per export file; larger results are cut (x-outpost-truncated)' }),
        enrollmentTokenTtlSeconds: Type.Integer({ minimum: 60, default: 86_400, description: 'Default lifetime of minted enrollment tokens' }),
        commandTtlSeconds: Type.Integer({ minimum: 1, default: 3600, description: 'Commands not fetched by then are not delivered (status "expired")' }),
      },
      'Bounds',
    ),
  },
  { title: 'Outpost cloud API configuration' },
);

export type CloudConfig = Static<typeof CloudConfigSchema>;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
// date-time is the only format used; a full ajv-formats would be a new dependency.
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s) });
const validate = ajv.compile<CloudConfig>(CloudConfigSchema);

export function loadCloudConfigFile(path: string): CloudConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file: path, line: 0, col: 0, path: '', message: reason }]);
  }
  return parseCloudConfig(text, path);
}

/** Parses, validates and fills defaults; `file` only labels errors. */
export function parseCloudConfig(text: string, file: string): CloudConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: '', message: e.message.split('\n')[0] ?? e.message };
      }),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  if (validate(data)) {
    const dup = duplicateTokens(data);
    if (dup.length === 0) return data;
    throw new ConfigError(dup.map((p) => problemAt(doc, lines, file, p, 'the same token is listed twice')));
  }
  const problems = (validate.errors ?? []).map((e) => toProblem(e, doc, lines, file));
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(problems);
}

function duplicateTokens(cfg: CloudConfig): (string | number)[][] {
  const out: (string | number)[][] = [];
  const seen = new Set<string>();
  cfg.tokens.forEach((t, i) => (seen.has(t.sha256) ? out.push(['tokens', i, 'sha256']) : seen.add(t.sha256)));
  const seenEnroll = new Set<string>();
  cfg.enrollmentTokens.forEach((t, i) => (seenEnroll.has(t.sha256) ? out.push(['enrollmentTokens', i, 'sha256']) : seenEnroll.add(t.sha256)));
  return out;
}

function toProblem(e: ErrorObject, doc: Document, lines: LineCounter, file: string): ConfigProblem {
  const path = e.instancePath ? e.instancePath.slice(1).split('/').map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~'))) : [];
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const at = problemAt(doc, lines, file, [...path, key], `unknown key "${key}"`);
      const keyNode = keyNodeOf(path.length === 0 ? doc.contents : doc.getIn(path, true), key);
      if (!keyNode?.range) return at;
      const pos = lines.linePos(keyNode.range[0]);
      return { ...at, line: pos.line, col: pos.col };
    }
    case 'required':
      return problemAt(doc, lines, file, path, `missing required key "${String(params.missingProperty)}"`);
    case 'enum':
      return problemAt(doc, lines, file, path, `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`);
    default:
      return problemAt(doc, lines, file, path, e.message ?? 'is invalid');
  }
}

function problemAt(doc: Document, lines: LineCounter, file: string, path: (string | number)[], message: string): ConfigProblem {
  const pos = lines.linePos(nodeAt(doc, path)?.range?.[0] ?? 0);
  return { file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

// The deepest existing node on the path, so a missing key still points at its parent.
function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const found: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(found)) return found;
  }
  return undefined;
}

// An unknown key is reported at the key itself, not at its value.
function keyNodeOf(map: unknown, key: string): Node | undefined {
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isNode(p.key) && String((p.key as { value?: unknown }).value) === key);
  return pair && isNode(pair.key) ? pair.key : undefined;
}
