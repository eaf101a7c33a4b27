// The HTTP driver's descriptor: devices that POST JSON to the local API (driver.ts).
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { HttpDriver } from './driver.js';
import { registerHttpRoutes } from './routes.js';
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
      const n = (['bearer', 'basic', 'hmac'] as const).filter((k) => d.config.auth[k] !== undefined).length;
      return n === 1 ? [] : [{ path: ['devices', d.index, 'http', 'auth'], message: 'give exactly one of bearer, basic or hmac' }];
    });
  },
  routes: registerHttpRoutes,
};
