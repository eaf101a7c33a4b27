// The simulator's descriptor: fake sensors so a new install shows data (driver.ts).
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { SimulatorDriver } from './driver.js';
import { SimulatorDriverSchema } from './schema.js';

export const simulator: DriverDescriptor<'simulator', typeof SimulatorDriverSchema, undefined, SimulatorDriver, Record<string, never>> = {
  name: 'simulator',
  config: SimulatorDriverSchema,
  enabled: (c) => c.enabled,
  metrics: () => ({}),
  async create(section): Promise<SimulatorDriver> {
    const { SimulatorDriver } = await import('./driver.js');
    return new SimulatorDriver(section);
  },
};
