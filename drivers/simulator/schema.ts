// Config schema of the simulator driver (drivers.simulator).
import { Type, type Static } from '@sinclair/typebox';
import { Section } from '../../gateway/kernel/schema-kit.js';

export const SimulatorDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    zone: Type.String({ default: 'demo' }),
    devices: Type.Integer({ minimum: 1, maximum: 1000, default: 2, description: 'How many simulated devices' }),
    intervalMs: Type.Integer({ minimum: 10, default: 1000, description: 'One reading per point per interval' }),
  },
  'Built-in simulator: sine-wave temperature/humidity readings so a new install shows data',
);
export type SimulatorDriverConfig = Static<typeof SimulatorDriverSchema>;
