// The LoRaWAN driver's descriptor: the site's own network server for Semtech UDP packet
// forwarders (driver.ts). Everything it needs from Outpost comes through here.
import { existsSync } from 'node:fs';
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import type { LorawanDriver } from './driver.js';
import { keyFiles } from './keys.js';
import { lorawanMetrics, type LorawanMetrics } from './metrics.js';
import { registerLorawanRoutes } from './routes.js';
import { registerLorawanCli } from './cli.js';
import { LorawanDeviceSchema, LorawanDriverSchema } from './schema.js';

export const lorawan: DriverDescriptor<'lorawan', typeof LorawanDriverSchema, typeof LorawanDeviceSchema, LorawanDriver, LorawanMetrics> = {
  name: 'lorawan',
  config: LorawanDriverSchema,
  device: LorawanDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: lorawanMetrics,
  async create(section, site): Promise<LorawanDriver> {
    const { LorawanDriver } = await import('./driver.js');
    return new LorawanDriver(section, site);
  },
  checks(section, site) {
    const out: CrossCheckProblem[] = [];
    const seen = new Map<string, string>();
    const once = (key: string, where: string, path: (string | number)[], what: string) => {
      const prev = seen.get(key);
      if (prev !== undefined) out.push({ path, message: `${what} is already used by ${prev}` });
      else seen.set(key, where);
    };
    section.gateways.forEach((g, i) =>
      once(
        `gw:${g.eui.toLowerCase()}`,
        `drivers.lorawan.gateways[${i}]`,
        ['drivers', 'lorawan', 'gateways', i, 'eui'],
        `gateway EUI ${g.eui}`,
      ),
    );
    for (const [name, p] of Object.entries(section.profiles)) {
      if (p.codec !== 'none' && p.codec !== 'lpp' && !existsSync(p.codec)) {
        out.push({
          path: ['drivers', 'lorawan', 'profiles', name, 'codec'],
          message: `codec file ${p.codec} does not exist ('lpp', 'none' or a file path)`,
        });
      }
    }
    for (const d of site.devices) {
      const at = ['devices', d.index, 'lorawan'];
      const c = d.config;
      once(`eui:${c.devEui.toLowerCase()}`, `devices[${d.index}]`, [...at, 'devEui'], `DevEUI ${c.devEui}`);
      if (!section.profiles[c.profile])
        out.push({ path: [...at, 'profile'], message: `no profile "${c.profile}" in drivers.lorawan.profiles` });
      if (c.activation === 'otaa' && !c.appKey) out.push({ path: [...at, 'appKey'], message: 'an OTAA device needs appKey' });
      if (c.activation === 'abp') {
        for (const k of ['devAddr', 'nwkSKey', 'appSKey'] as const) {
          if (!c[k]) out.push({ path: [...at, k], message: `an ABP device needs ${k}` });
        }
        if (c.devAddr) once(`addr:${c.devAddr.toLowerCase()}`, `devices[${d.index}]`, [...at, 'devAddr'], `DevAddr ${c.devAddr}`);
      }
    }
    return out;
  },
  routes: registerLorawanRoutes,
  cli: (program, hooks) => registerLorawanCli(program, hooks),
  deviceSecretFiles: (c) => keyFiles([c.appKey, c.nwkSKey, c.appSKey], 'a LoRaWAN key file'),
  inlineSecrets: (c) => (['appKey', 'nwkSKey', 'appSKey'] as const).filter((k) => typeof c[k] === 'string'),
};
