// Config schema of the MQTT driver: the embedded broker's listeners and limits under
// drivers.mqtt, and per device an `mqtt` section with its login.
import { Type, type Static } from '@sinclair/typebox';
import { Port, Strict, Section, StringEnum } from '../../gateway/kernel/schema-kit.js';

const TlsListener = Strict(
  {
    port: Port(8883, 'MQTT over TLS port'),
    cert: Type.String({ description: 'PEM certificate file (relative to the working directory)' }),
    key: Type.String({ description: 'PEM private key file (relative to the working directory)' }),
  },
  { description: 'Enables MQTT over TLS when present' },
);

export const MqttDriverSchema = Section(
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
export type MqttDriverConfig = Static<typeof MqttDriverSchema>;

export const MqttDeviceSchema = Strict({
  username: Type.String({ minLength: 1 }),
  passwordHash: Type.String({
    pattern: '^scrypt\\$',
    description: 'a scrypt hash from `outpost hash-password` (never the password itself)',
  }),
});
export type MqttDeviceConfig = Static<typeof MqttDeviceSchema>;
