// The site config schema: the single source of truth for both the JSON Schema that
// validates YAML files (config/site.schema.json is generated from it and checked by a
// test) and the TypeScript types the gateway uses. Every object rejects unknown keys
// because a typo is an installer's most common mistake. Fields with a `default` are
// filled in by the validator, so the resolved `SiteConfig` type has them non-optional.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { CameraDeviceSchema, CameraDriverSchema } from '../drivers/camera/schema.js';
import { ModbusDeviceSchema, ModbusDriverSchema } from '../drivers/modbus/schema.js';
import { ConditionSchema, RuleSchema } from '../gateway/rules/schema.js';
import { Id, Role, Section, Strict, StringEnum } from './schema-kit.js';
import { SyncSchema } from '../sync/schema.js';

const Port = (dflt: number, description: string) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: dflt, description });

export { ROLES, Role } from './schema-kit.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const TlsListener = Strict(
  {
    port: Port(8883, 'MQTT over TLS port'),
    cert: Type.String({ description: 'PEM certificate file (relative to the working directory)' }),
    key: Type.String({ description: 'PEM private key file (relative to the working directory)' }),
  },
  { description: 'Enables MQTT over TLS when present' },
);

const MqttDriver = Section(
  {
    enabled: Type.Boolean({ default: true }),
    host: Type.String({ default: '0.0.0.0', description: 'Address the broker listens on' }),
    port: Port(1883, 'MQTT TCP port (0 picks a free port)'),
    tls: Type.Optional(TlsListener),
    websocket: Type.Optional(Strict({ port: Port(8083, 'MQTT over WebSocket port') })),
    anonymous: StringEnum(['loopback', 'never', 'always'] as const, {
      default: 'loopback',
      description: 'Who may connect without a device username: loopback clients only, nobody, or anyone',
    }),
    maxPayloadBytes: Type.Integer({ minimum: 64, default: 262144, description: 'Larger publishes are rejected' }),
    maxReadingsPerMessage: Type.Integer({ minimum: 1, default: 10000 }),
    maxConnections: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'Connections at once; past it CONNECT is refused with "server unavailable" (and sockets far past it are closed at once)',
    }),
    maxMessagesPerSecond: Type.Integer({
      minimum: 0,
      default: 1000,
      description: 'Publishes per second per client (0: no limit); a faster client is slowed down, not dropped (see the driver README)',
    }),
  },
  'Embedded MQTT broker (aedes)',
);

const SimulatorDriver = Section(
  {
    enabled: Type.Boolean({ default: false }),
    zone: Type.String({ default: 'demo' }),
    devices: Type.Integer({ minimum: 1, maximum: 1000, default: 2, description: 'How many simulated devices' }),
    intervalMs: Type.Integer({ minimum: 10, default: 1000, description: 'One reading per point per interval' }),
  },
  'Built-in simulator: sine-wave temperature/humidity readings so a new install shows data',
);

const Device = Strict({
  id: Id('Device id, unique in the site; the {device} part of its MQTT topics'),
  zone: Id('Zone (room, floor, area); the {zone} part of its MQTT topics'),
  name: Type.Optional(Type.String()),
  tags: Type.Array(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), {
    default: [],
    description: 'Free labels for rules (e.g. [hvac, critical]): `when.reading.tags` and `device` conditions select by them',
  }),
  modbus: Type.Optional(ModbusDeviceSchema),
  camera: Type.Optional(CameraDeviceSchema),
  mqtt: Type.Optional(
    Strict({
      username: Type.String({ minLength: 1 }),
      passwordHash: Type.String({
        pattern: '^scrypt\\$',
        description: 'a scrypt hash from `outpost hash-password` (never the password itself)',
      }),
    }),
  ),
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
    log: Section(
      { level: StringEnum(LOG_LEVELS, { default: 'info', description: 'Overridden by OUTPOST_LOG_LEVEL' }) },
      'Logging',
    ),
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
          description: 'Rows waiting for commit (about 1.3 KB of memory each); past it, lossy input is dropped and acknowledged input waits',
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
          description: 'Address the local API listens on: 0.0.0.0 = every interface (then HTTPS by default, see tls), 127.0.0.1 = this box only',
        }),
        port: Port(8080, 'Local API port (0 picks a free port)'),
        tls: Section(
          {
            mode: StringEnum(['auto', 'on', 'off'] as const, {
              default: 'auto',
              description:
                'auto: HTTPS whenever the API listens off loopback, plain HTTP on loopback; on: always HTTPS; off: plain HTTP (a warning at start when reachable off loopback)',
            }),
            cert: Type.Optional(Type.String({ description: 'PEM certificate (chain) file; omitted: a self-signed one is generated once in <dataDir>/tls' })),
            key: Type.Optional(Type.String({ description: 'PEM private key file (mode 0600); give it with cert' })),
            redirectPort: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 65535, description: 'Also listen for plain HTTP on this port and redirect it to HTTPS' }),
            ),
          },
          'HTTPS for the local API (bearer tokens must not cross the site LAN in clear)',
        ),
        rateLimit: Section(
          {
            authFailures: RateWindow(10, 60, 'Failed authentications per source address; past it every request from that address gets 429 until the window ends'),
            requests: RateWindow(1000, 3600, 'Requests per API token (X-RateLimit-* headers); past it 429 until the window ends'),
            maxTrackedKeys: Type.Integer({ minimum: 100, default: 10000, description: 'Addresses/tokens tracked at once; the oldest window is forgotten first' }),
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
    drivers: Section({ mqtt: MqttDriver, modbus: ModbusDriverSchema, simulator: SimulatorDriver, camera: CameraDriverSchema }, 'Protocol drivers'),
    devices: Type.Array(Device, { default: [] }),
    locks: Type.Array(Lock, { default: [], description: 'Doors the gateway can lock and unlock locally' }),
    allowLists: Type.Record(Type.String(), Type.Array(Type.String({ minLength: 1 })), {
      default: {},
      description: 'Named lists of badge/keypad credential ids, for rules with a badge action',
    }),
    timezone: Type.String({ default: 'UTC', description: 'IANA time zone of the site, for rule times of day (e.g. Europe/Berlin)' }),
    rules: Type.Array(RuleSchema, { default: [], description: 'Local automation: see docs/RULES.md' }),
    sync: SyncSchema,
    shutdownTimeoutMs: Type.Integer({ minimum: 100, default: 10000, description: 'Hard exit deadline on SIGTERM' }),
  },
  { title: 'Outpost site configuration', $defs: { RuleCondition: ConditionSchema } },
);

export type SiteConfig = Static<typeof SiteConfigSchema>;
export type MqttDriverConfig = SiteConfig['drivers']['mqtt'];
export type SimulatorDriverConfig = SiteConfig['drivers']['simulator'];
export type StoreConfig = SiteConfig['store'];

/** The schema as plain JSON (TypeBox adds symbol keys that JSON drops). */
export function schemaJson(schema: TSchema = SiteConfigSchema): string {
  return JSON.stringify(schema, null, 2) + '\n';
}
