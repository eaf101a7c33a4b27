// The MQTT bridge's descriptor: subscriptions to existing brokers (driver.ts).
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import type { BridgeDriver } from './driver.js';
import { bridgeMetrics, type BridgeMetrics } from './metrics.js';
import { BridgeDeviceSchema, BridgeDriverSchema } from './schema.js';
import { filterProblem, templateProblem } from './topics.js';

export const bridge: DriverDescriptor<'bridge', typeof BridgeDriverSchema, typeof BridgeDeviceSchema, BridgeDriver, BridgeMetrics> = {
  name: 'bridge',
  config: BridgeDriverSchema,
  device: BridgeDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: bridgeMetrics,
  async create(section, site): Promise<BridgeDriver> {
    const { BridgeDriver } = await import('./driver.js');
    return new BridgeDriver(section, site);
  },
  checks(section, site) {
    const out: CrossCheckProblem[] = [];
    const ids = new Set<string>();
    const clientIds = new Map<string, string>();
    section.brokers.forEach((b, i) => {
      const at = ['drivers', 'bridge', 'brokers', i];
      if (ids.has(b.id)) out.push({ path: [...at, 'id'], message: `broker id "${b.id}" is used twice` });
      ids.add(b.id);
      const cid = b.clientId ?? `outpost-${site.id}-${b.id}`;
      const prev = clientIds.get(`${b.url} ${cid}`);
      if (prev)
        out.push({ path: [...at, 'clientId'], message: `the same client id on the same broker as ${prev}: they would evict each other` });
      clientIds.set(`${b.url} ${cid}`, b.id);
      if ((b.cert === undefined) !== (b.key === undefined)) out.push({ path: at, message: 'give cert and key together' });
      if ((b.ca || b.cert) && !b.url.startsWith('mqtts://')) out.push({ path: [...at, 'url'], message: 'TLS files need an mqtts:// url' });
      b.subscriptions.forEach((s, j) => {
        const p = filterProblem(s.topic) ?? templateProblem(s.topic, s.device);
        if (p) out.push({ path: [...at, 'subscriptions', j], message: p });
      });
    });
    const names = new Map<string, string>();
    for (const d of site.devices) {
      const at = ['devices', d.index, 'bridge'];
      if (!ids.has(d.config.broker))
        out.push({ path: [...at, 'broker'], message: `no broker "${d.config.broker}" in drivers.bridge.brokers` });
      const key = `${d.config.broker}/${d.config.name ?? d.id}`;
      const prev = names.get(key);
      if (prev) out.push({ path: at, message: `device "${prev}" already has the name "${d.config.name ?? d.id}" on this broker` });
      else names.set(key, d.id);
    }
    return out;
  },
  secretFiles: (section) => section.brokers.flatMap((b) => (b.key ? [{ path: b.key, what: `drivers.bridge broker ${b.id} TLS key` }] : [])),
};
