// The HTTP driver's descriptor: devices that POST JSON to the local API (driver.ts).
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { HttpDriver } from './driver.js';
import { registerHttpRoutes } from './routes.js';
import { registerMapCli } from './map-cli.js';
import { HttpDeviceSchema, HttpDriverSchema } from './schema.js';

export const http: DriverDescriptor<'http', typeof HttpDriverSchema, typeof HttpDeviceSchema, HttpDriver, Record<string, never>> = {
  name: 'http',
  config: HttpDriverSchema,
  device: HttpDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: () => ({}),
  async create(section, site): Promise<HttpDriver> {
    const { HttpDriver } = await import('./driver.js');
    return new HttpDriver(section, site);
  },
  checks(_section, site) {
    return site.devices.flatMap((d) => {
      const out = [];
      const at = ['devices', d.index, 'http'];
      const auth = d.config.auth;
      if (auth && (['bearer', 'basic', 'hmac'] as const).filter((k) => auth[k] !== undefined).length !== 1) {
        out.push({ path: [...at, 'auth'], message: 'give exactly one of bearer, basic or hmac' });
      }
      if (!auth && !d.config.poll && !d.config.write)
        out.push({ path: at, message: 'give auth (it pushes), poll (Outpost reads it) or write' });
      const poll = d.config.poll;
      if (poll?.format === 'text' && !poll.patterns)
        out.push({ path: [...at, 'poll', 'patterns'], message: 'a text page needs patterns (point → regex)' });
      for (const [point, re] of Object.entries(poll?.patterns ?? {})) {
        try {
          new RegExp(re);
        } catch (err) {
          out.push({ path: [...at, 'poll', 'patterns', point], message: `not a regular expression: ${(err as Error).message}` });
        }
      }
      return out;
    });
  },
  routes: registerHttpRoutes,
  cli: registerMapCli,
};
