// The drivers Outpost knows: one descriptor per folder. The site config schema, the
// config checks, /metrics, the local API and the CLI are all built from this list; a
// new driver is a new folder and one line here.
import { camera } from './camera/index.js';
import { bridge } from './mqtt-bridge/index.js';
import { http } from './http/index.js';
import { lorawan } from './lorawan/index.js';
import { modbus } from './modbus/index.js';
import { mqtt } from './mqtt/index.js';
import { simulator } from './simulator/index.js';

export const DRIVERS = [mqtt, modbus, simulator, camera, lorawan, http, bridge] as const;
