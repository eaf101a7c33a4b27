// The MQTT driver's descriptor: an embedded broker devices publish to (driver.ts).
import type { CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { MqttDriver } from './driver.js';
import { mqttMetrics, type MqttMetrics } from './metrics.js';
import { MqttDeviceSchema, MqttDriverSchema } from './schema.js';

export const mqtt: DriverDescriptor<'mqtt', typeof MqttDriverSchema, typeof MqttDeviceSchema, MqttDriver, MqttMetrics> = {
  name: 'mqtt',
  config: MqttDriverSchema,
  device: MqttDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: mqttMetrics,
  takesLockCommands: true,
  secretFiles: (c) => (c.tls ? [{ path: c.tls.key, what: 'the MQTT TLS key' }] : []),
  async create(section, site): Promise<MqttDriver> {
    const { MqttDriver } = await import('./driver.js');
    return new MqttDriver(section, site);
  },
  checks(section, site) {
    const out: CrossCheckProblem[] = [];
    const users = new Map<string, number>();
    for (const d of site.devices) {
      const prev = users.get(d.config.username);
      if (prev === undefined) users.set(d.config.username, d.index);
      else
        out.push({
          path: ['devices', d.index, 'mqtt', 'username'],
          message: `MQTT username "${d.config.username}" is already used by devices[${prev}]`,
        });
    }
    if (section.maxReadingsPerMessage > site.maxQueueRows) {
      out.push({
        path: ['drivers', 'mqtt', 'maxReadingsPerMessage'],
        message: `must not exceed store.maxQueueRows (${site.maxQueueRows}), or such a message could never be stored`,
      });
    }
    return out;
  },
};
