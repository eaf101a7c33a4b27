// Config schema of the LoRaWAN driver (drivers.lorawan) and of a LoRaWAN device
// (devices[].lorawan). Keys are 32 hex digits, EUIs 16, DevAddr 8; a key may instead
// name an environment variable or a file (0600), like other secrets.
import { Type, type Static } from '@sinclair/typebox';
import { Port, Section, Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';

export const REGIONS = ['EU868', 'US915'] as const;

const Hex = (digits: number, description: string, opts: { default?: string } = {}) =>
  Type.String({ pattern: `^[0-9A-Fa-f]{${digits}}$`, description: `${description} (${digits} hex digits)`, ...opts });

/** A 128-bit key: inline hex, or `{ env: NAME }`, or `{ file: PATH }` holding the hex. */
const Key = (description: string) =>
  Type.Union([Hex(32, description), Strict({ env: Type.String({ minLength: 1 }) }), Strict({ file: Type.String({ minLength: 1 }) })], {
    description: `${description}: 32 hex digits, or { env: NAME } / { file: PATH } holding them`,
  });
export type KeyRef = Static<ReturnType<typeof Key>>;

const Gateway = Strict({
  eui: Hex(16, 'Gateway EUI, as the packet forwarder sends it'),
  name: Type.Optional(Type.String()),
});

const Profile = Strict({
  codec: Type.String({
    default: 'none',
    description: "'lpp' (Cayenne LPP), 'none' (raw bytes as hex in an event), or a path to a ChirpStack/TTN-style JavaScript codec",
  }),
  rx1DrOffset: Type.Integer({ minimum: 0, maximum: 7, default: 0, description: 'RX1 data-rate offset sent in the JoinAccept' }),
  rx1DelayS: Type.Integer({ minimum: 1, maximum: 15, default: 1, description: 'RECEIVE_DELAY1 in seconds (JoinAccept RxDelay)' }),
  confirmedDownlinks: Type.Boolean({ default: false, description: 'Default for downlinks queued without a confirmed flag' }),
});
export type LorawanProfile = Static<typeof Profile>;

export const LorawanDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    host: Type.String({ default: '0.0.0.0', description: 'UDP address the packet forwarders send to' }),
    port: Port(1700, 'UDP port of the Semtech packet forwarder protocol'),
    region: StringEnum(REGIONS, { default: 'EU868' }),
    netId: Hex(6, 'NetID; 000000 and 000001 are for private networks', { default: '000000' }),
    gateways: Type.Array(Gateway, { default: [], description: 'Packet forwarders allowed to send' }),
    allowUnknownGateways: Type.Boolean({ default: false, description: 'Accept forwarders not listed in gateways (not for production)' }),
    gatewayOfflineAfterS: Type.Integer({
      minimum: 5,
      default: 60,
      description: 'A gateway silent this long is offline (forwarders pull every 5-10 s)',
    }),
    dedupWindowMs: Type.Integer({
      minimum: 0,
      maximum: 1000,
      default: 200,
      description: 'How long copies of one uplink from other gateways are awaited',
    }),
    maxFCntGap: Type.Integer({
      minimum: 1,
      maximum: 65535,
      default: 16384,
      description: 'Uplinks further ahead of the last frame counter are refused',
    }),
    profiles: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), Profile, {
      default: { default: { codec: 'none', rx1DrOffset: 0, rx1DelayS: 1, confirmedDownlinks: false } },
      description: 'Device profiles by name',
    }),
    codecTimeoutMs: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'A user codec call that runs longer is stopped' }),
    codecMemoryMB: Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'Memory limit of each user codec' }),
    maxQueuedDownlinks: Type.Integer({ minimum: 1, maximum: 1000, default: 16, description: 'Per device; more are refused' }),
    downlinkTtlS: Type.Integer({ minimum: 1, default: 86_400, description: 'A queued downlink not sent within this is dropped' }),
  },
  'LoRaWAN network server for the site: Semtech UDP packet forwarders, OTAA/ABP, Class A downlinks',
);
export type LorawanDriverConfig = Static<typeof LorawanDriverSchema>;

export const LorawanDeviceSchema = Strict(
  {
    devEui: Hex(16, 'DevEUI'),
    profile: Type.String({ default: 'default', description: 'A name in drivers.lorawan.profiles' }),
    activation: StringEnum(['otaa', 'abp'] as const, { default: 'otaa' }),
    joinEui: Type.Optional(Hex(16, 'JoinEUI (AppEUI in LoRaWAN 1.0)')),
    appKey: Type.Optional(Key('AppKey (OTAA)')),
    devAddr: Type.Optional(Hex(8, 'DevAddr (ABP)')),
    nwkSKey: Type.Optional(Key('NwkSKey (ABP)')),
    appSKey: Type.Optional(Key('AppSKey (ABP)')),
  },
  { description: 'LoRaWAN 1.0.x device' },
);
export type LorawanDeviceConfig = Static<typeof LorawanDeviceSchema>;
