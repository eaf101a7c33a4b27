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

const ApiToken = Strict({
  name: Type.String({ minLength: 1 }),
  role: Role,
  doorGroups: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: 'Lock groups this token may lock/unlock (operator role or above; "*" = all). Admins may operate every lock.',
  }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'the sha256 printed by `outpost token create`' }),
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
        host: Type.String({ default: '0.0.0.0' }),
        port: Port(8080, 'Local API port (0 picks a free port)'),
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
