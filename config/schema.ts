// The site config schema: the single source of truth for both the JSON Schema that
// validates YAML files (config/site.schema.json is generated from it and checked by a
// test) and the TypeScript types the gateway uses. Every object rejects unknown keys
// because a typo is an installer's most common mistake. Fields with a `default` are
// filled in by the validator, so the resolved `SiteConfig` type has them non-optional.
import { Type, type Static, type TOptional, type TSchema } from '@sinclair/typebox';
import { DRIVERS } from '../drivers/index.js';
import { ConditionSchema, RuleSchema } from './rules-schema.js';
import { Id, Port, Role, Section, Strict, StringEnum } from '../gateway/kernel/schema-kit.js';
import { SyncSchema } from './sync-schema.js';
import { WebhooksSchema } from './webhooks-schema.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

// The drivers' sections come from their descriptors (drivers/index.ts): `drivers.<name>`
// for each driver, and `devices[].<name>` for those with per-device settings.
type Registered = (typeof DRIVERS)[number];
type DriverSections = { [R in Registered as R['name']]: R['config'] };
type DeviceSections = {
  [R in Registered as [NonNullable<R['device']>] extends [never] ? never : R['name']]: TOptional<NonNullable<R['device']>>;
};
const driverSections = Object.fromEntries(DRIVERS.map((d) => [d.name, d.config])) as unknown as DriverSections;
const deviceSections = Object.fromEntries(
  DRIVERS.flatMap((d) => (d.device ? [[d.name, Type.Optional(d.device)]] : [])),
) as unknown as DeviceSections;

const Device = Strict({
  id: Id('Device id, unique in the site; the {device} part of its MQTT topics'),
  zone: Id('Zone (room, floor, area); the {zone} part of its MQTT topics'),
  name: Type.Optional(Type.String()),
  tags: Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), {
    default: [],
    description: 'Free labels for rules (e.g. [hvac, critical]): `when.reading.tags` and `device` conditions select by them',
  }),
  ...deviceSections,
});
export type DeviceConfig = Static<typeof Device>;

const RateWindow = (max: number, windowS: number, description: string) =>
  Strict(
    {
      max: Type.Integer({ minimum: 1, default: max, description: 'Requests allowed per window' }),
      windowS: Type.Integer({ minimum: 1, default: windowS, description: 'Window length in seconds (fixed windows)' }),
    },
    { default: {}, description },
  );

const ApiToken = Strict({
  name: Type.String({ minLength: 1 }),
  role: Role,
  doorGroups: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: 'Lock groups this token may lock/unlock (operator role or above; "*" = all). Admins may operate every lock.',
  }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'the sha256 printed by `outpost token create`' }),
  rateLimit: Type.Optional(
    Strict(
      {
        max: Type.Integer({ minimum: 1, description: 'Requests allowed per window for this token' }),
        windowS: Type.Integer({ minimum: 1, default: 3600 }),
      },
      { description: 'Overrides http.rateLimit.requests for this token (e.g. a busy integration)' },
    ),
  ),
});
export type ApiTokenConfig = Static<typeof ApiToken>;

const Lock = Strict({
  id: Id('Lock id, used in /api/v1/locks/{id}'),
  name: Type.Optional(Type.String()),
  group: Id('Door group, for access rules (http.tokens[].doorGroups)'),
  device: Id('The configured device that drives the lock'),
  modbusPoint: Type.Optional(
    Type.String({ description: 'A writable coil point of a Modbus device; omitted: the device gets lock/unlock commands (MQTT)' }),
  ),
  unlockedWhen: StringEnum(['on', 'off'] as const, { default: 'on', description: 'Coil state that means unlocked' }),
  unlockSeconds: Type.Integer({ minimum: 0, default: 5, description: 'Re-lock after this long; 0 = stay unlocked until locked' }),
  maxUnlockSeconds: Type.Integer({ minimum: 1, default: 3600, description: 'Longest unlock a request may ask for' }),
});
export type LockConfig = Static<typeof Lock>;

export const SiteConfigSchema = Strict(
  {
    $schema: Type.Optional(Type.String()),
    site: Id('Site id; the {site} part of MQTT topics'),
    dataDir: Type.String({ default: './data', description: 'DuckDB file, admin token (relative to the working directory)' }),
    log: Section({ level: StringEnum(LOG_LEVELS, { default: 'info', description: 'Overridden by OUTPOST_LOG_LEVEL' }) }, 'Logging'),
    store: Section(
      {
        file: Type.String({ default: 'outpost.duckdb', description: 'Relative to dataDir' }),
        flushIntervalMs: Type.Integer({
          minimum: 1,
          maximum: 50,
          default: 5,
          description: 'How long an idle store gathers rows before committing; under load commits run back to back',
        }),
        flushRows: Type.Integer({ minimum: 1, default: 20000, description: 'Commit as soon as this many rows wait' }),
        maxQueueRows: Type.Integer({
          minimum: 1,
          default: 100000,
          description:
            'Rows waiting for commit (about 1.3 KB of memory each); past it, lossy input is dropped and acknowledged input waits',
        }),
        memoryLimitMB: Type.Integer({
          minimum: 16,
          default: 256,
          description: "DuckDB's buffer memory limit (its own default is 80% of RAM, too much for a shared edge box)",
        }),
        retention: Section(
          {
            maxAgeDays: Type.Number({ exclusiveMinimum: 0, default: 30 }),
            maxDiskMB: Type.Number({ exclusiveMinimum: 0, default: 2048 }),
            checkIntervalS: Type.Number({ exclusiveMinimum: 0, default: 60 }),
          },
          'Oldest readings are deleted first when either limit is passed; events are kept longer',
        ),
      },
      'DuckDB buffer of every reading and event',
    ),
    http: Section(
      {
        host: Type.String({
          default: '0.0.0.0',
          description:
            'Address the local API listens on: 0.0.0.0 = every interface (then HTTPS by default, see tls), 127.0.0.1 = this box only',
        }),
        port: Port(8080, 'Local API port (0 picks a free port)'),
        tls: Section(
          {
            mode: StringEnum(['auto', 'on', 'off'] as const, {
              default: 'auto',
              description:
                'auto: HTTPS whenever the API listens off loopback, plain HTTP on loopback; on: always HTTPS; off: plain HTTP (a warning at start when reachable off loopback)',
            }),
            cert: Type.Optional(
              Type.String({ description: 'PEM certificate (chain) file; omitted: a self-signed one is generated once in <dataDir>/tls' }),
            ),
            key: Type.Optional(Type.String({ description: 'PEM private key file (mode 0600); give it with cert' })),
            redirectPort: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 65535, description: 'Also listen for plain HTTP on this port and redirect it to HTTPS' }),
            ),
          },
          'HTTPS for the local API (bearer tokens must not cross the site LAN in clear)',
        ),
        rateLimit: Section(
          {
            authFailures: RateWindow(
              10,
              60,
              'Failed authentications per source address; past it every request from that address gets 429 until the window ends',
            ),
            requests: RateWindow(1000, 3600, 'Requests per API token (X-RateLimit-* headers); past it 429 until the window ends'),
            maxTrackedKeys: Type.Integer({
              minimum: 100,
              default: 10000,
              description: 'Addresses/tokens tracked at once; the oldest window is forgotten first',
            }),
          },
          'Rate limits of the local API',
        ),
        query: Section(
          {
            timeoutMs: Type.Integer({ minimum: 100, default: 10000, description: 'An admin SQL query running longer is interrupted' }),
            maxRows: Type.Integer({ minimum: 1, maximum: 50000, default: 10000, description: 'Most rows one admin SQL query returns' }),
            maxConcurrent: Type.Integer({ minimum: 1, default: 2, description: 'Admin SQL queries running at once; more get 429' }),
          },
          'Limits of the admin SQL endpoint (POST /api/v1/query, outpost query)',
        ),
        tokens: Type.Array(ApiToken, { default: [], description: 'Empty: an admin token is generated into dataDir' }),
      },
      'Local HTTP API',
    ),
    drivers: Section(driverSections, 'Protocol drivers'),
    devices: Type.Array(Device, { default: [] }),
    locks: Type.Array(Lock, { default: [], description: 'Doors the gateway can lock and unlock locally' }),
    allowLists: Type.Record(Type.String(), Type.Array(Type.String({ minLength: 1 })), {
      default: {},
      description: 'Named lists of badge/keypad credential ids, for rules with a badge action',
    }),
    timezone: Type.String({ default: 'UTC', description: 'IANA time zone of the site, for rule times of day (e.g. Europe/Berlin)' }),
    rules: Type.Array(RuleSchema, { default: [], description: 'Local automation: see docs/RULES.md' }),
    sync: SyncSchema,
    webhooks: WebhooksSchema,
    shutdownTimeoutMs: Type.Integer({ minimum: 100, default: 10000, description: 'Hard exit deadline on SIGTERM' }),
  },
  { title: 'Outpost site configuration', $defs: { RuleCondition: ConditionSchema } },
);

export type SiteConfig = Static<typeof SiteConfigSchema>;
export type StoreConfig = SiteConfig['store'];

/** The schema as plain JSON (TypeBox adds symbol keys that JSON drops). */
export function schemaJson(schema: TSchema = SiteConfigSchema): string {
  return JSON.stringify(schema, null, 2) + '\n';
}
