// Piscina worker: holds one shard's RuleEngine and its state. The main thread sends
// batches of facts; a worker that was replaced after a crash answers `needsInit` and
// the host re-initialises it from the last snapshot.
import type { DeviceInfo } from './devices.js';
import type { RuleConfig } from '../../config/rules-schema.js';
import { RuleEngine, type EngineState, type Fact, type Firing } from './engine.js';

export type WorkerTask =
  | { op: 'init'; rules: RuleConfig[]; timezone: string; devices: DeviceInfo[]; states: string[] }
  | { op: 'process'; facts: Fact[] }
  | { op: 'tick'; now: number }
  | { op: 'snapshot' }
  | { op: 'crash' };

export type WorkerResult =
  { needsInit: true } | { needsInit?: false; firings: Firing[]; evaluations: number } | { needsInit?: false; state: string };

let engine: RuleEngine | null = null;

export default function handle(task: WorkerTask): WorkerResult {
  switch (task.op) {
    case 'init': {
      engine = new RuleEngine(task.rules, { timezone: task.timezone, devices: task.devices });
      for (const s of task.states) engine.restore(JSON.parse(s) as EngineState);
      return { firings: [], evaluations: 0 };
    }
    case 'crash':
      // Test hook: lets tests prove that a worker crash loses no rule state.
      process.exit(1);
  }
  if (!engine) return { needsInit: true };
  // Serialised here, off the main thread; a string also crosses threads cheaply.
  if (task.op === 'snapshot') return { state: JSON.stringify(engine.snapshot()) };
  const before = engine.stats().evaluations;
  const firings = task.op === 'process' ? engine.process(task.facts) : engine.tick(task.now);
  return { firings, evaluations: engine.stats().evaluations - before };
}
