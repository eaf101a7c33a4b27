// The simulator's descriptor: fake sensors so a new install shows data (driver.ts).
import { defineDriver } from '../../gateway/contract/descriptor.js';
import type { SimulatorDriver } from './driver.js';
import { SimulatorDriverSchema } from './schema.js';

export const simulator = defineDriver({
  name: 'simulator',
  config: SimulatorDriverSchema,
  enabled: (c) => c.enabled,
  metrics: () => ({}),
  async create(section): Promise<SimulatorDriver> {
    const { SimulatorDriver } = await import('./driver.js');
    return new SimulatorDriver(section);
  },
});
