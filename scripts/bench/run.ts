// Bench dispatcher: `node dist/scripts/bench/run.js <name> [args]` loads ./<name>.js and calls its
// `main(args)`. Names come from this folder's listing, so an argument can never point the import
// anywhere else. Bad arguments (an Error named UsageError) exit 2 with the message alone.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from './lib/cli.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const benches = readdirSync(here).flatMap((f) => (f.endsWith('.js') && f !== 'run.js' ? [f.slice(0, -3)] : []));

try {
  const [name, ...args] = process.argv.slice(2);
  const problem = !name ? 'no bench named' : !benches.includes(name) ? `unknown bench "${name}"` : null;
  if (problem) throw new UsageError(`${problem}\nusage: npm run bench -- <name> [args]\navailable benches: ${benches.sort().join(', ')}`);
  const mod = (await import(`./${name}.js`)) as { main?: (args: string[]) => Promise<void> };
  if (typeof mod.main !== 'function') throw new UsageError(`bench "${name}" exports no main(args)`);
  await mod.main(args);
} catch (err) {
  const e = err as Error;
  console.error(e.name === 'UsageError' ? `bench: ${e.message}` : `bench failed: ${e.stack ?? String(e)}`);
  process.exitCode = e.name === 'UsageError' ? 2 : 1;
}
