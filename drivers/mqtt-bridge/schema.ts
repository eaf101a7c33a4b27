// Config schema of the MQTT bridge (drivers.bridge) and of a bridged device
// (devices[].bridge): which foreign brokers to subscribe to, which topics, how a topic
// names its device, and how its payload becomes readings.
import { Type, type Static } from '@sinclair/typebox';
import { Id, Section, Strict } from '../../gateway/kernel/schema-kit.js';
import { MappingSchema } from '../payloads/mapping.js';

const Subscription = Strict({
  topic: Type.String({ minLength: 1, maxLength: 1024, description: 'MQTT topic filter, e.g. zigbee2mqtt/+ or tele/+/SENSOR' }),
  qos: Type.Union([Type.Literal(0), Type.Literal(1)], {
    default: 1,
    description: '1: acknowledged to the broker only after the readings are committed; 0: lossy',
  }),
  device: Type.String({
    pattern: '^([^{}]|\\{\\d{1,2}\\})*\\{\\d{1,2}\\}([^{}]|\\{\\d{1,2}\\})*$',
    default: '{1}',
    description: 'Device name from the topic: {N} is topic level N (0-based), e.g. {1} of zigbee2mqtt/kitchen-sensor is kitchen-sensor',
  }),
  mapping: Type.Optional(MappingSchema),
});
export type BridgeSubscription = Static<typeof Subscription>;

const Broker = Strict({
  id: Id('Broker id (metrics, logs, devices[].bridge.broker)'),
  url: Type.String({ pattern: '^mqtts?://[^/?#\\s]+$', description: 'mqtt://host:1883 or mqtts://host:8883' }),
  username: Type.Optional(Type.String({ minLength: 1 })),
  passwordEnv: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the password' })),
  ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file: CA to trust for mqtts (default: the system CAs)' })),
  cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM file: client certificate (with key)' })),
  key: Type.Optional(Type.String({ minLength: 1, description: 'PEM file: client private key (with cert)' })),
  clientId: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: 'Default outpost-{site}-{id}; keep it stable for a persistent session' }),
  ),
  clean: Type.Boolean({
    default: false,
    description: 'false: persistent session, QoS 1 messages wait at the broker while the gateway is away',
  }),
  sessionExpiryS: Type.Integer({
    minimum: 0,
    maximum: 4_294_967_295,
    default: 7 * 86_400,
    description: 'With clean: false, how long the broker keeps the session (and queued QoS 1 messages) while we are away',
  }),
  keepaliveS: Type.Integer({ minimum: 5, maximum: 3600, default: 30 }),
  subscriptions: Type.Array(Subscription, { minItems: 1, maxItems: 64 }),
});
export type BridgeBroker = Static<typeof Broker>;

export const BridgeDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    brokers: Type.Array(Broker, { default: [], maxItems: 32 }),
    reconnect: Strict(
      {
        initialMs: Type.Integer({ minimum: 10, default: 1000 }),
        maxMs: Type.Integer({ minimum: 10, default: 60_000 }),
      },
      { default: {}, description: 'Reconnect backoff: initialMs doubling per failure, capped at maxMs' },
    ),
    maxPayloadBytes: Type.Integer({ minimum: 16, default: 256 * 1024, description: 'Larger messages are refused (payload_too_large)' }),
    maxReadingsPerMessage: Type.Integer({ minimum: 1, default: 1000 }),
  },
  'Bridges to existing MQTT brokers (zigbee2mqtt, Tasmota, ...): subscribe and ingest',
);
export type BridgeDriverConfig = Static<typeof BridgeDriverSchema>;

export const BridgeDeviceSchema = Strict(
  {
    broker: Id('The drivers.bridge.brokers[].id this device is heard on'),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Its name in the topic, when not the device id' })),
  },
  { description: 'A device heard through a bridged broker (only listed devices are accepted)' },
);
export type BridgeDeviceConfig = Static<typeof BridgeDeviceSchema>;
