// Bench dispatcher: `node dist/scripts/bench/run.js <name> [args]` loads ./<name>.js and
// calls its `main(args)`. Names come from this folder's listing, so an argument can never
// point the import anywhere else. A bench signals bad arguments by throwing an Error
// whose name is 'UsageError' (exit 2, message only).
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

type BenchModule = { main?: (args: string[]) => Promise<void> };

const HERE = dirname(fileURLToPath(import.meta.url));

function availableBenches(): string[] {
  return readdirSync(HERE, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js') && e.name !== 'run.js')
    .map((e) => e.name.slice(0, -'.js'.length))
    .sort();
}

function usage(problem: string): never {
  const names = availableBenches();
  console.error(`${problem}\nusage: npm run bench -- <name> [args]\navailable benches: ${names.join(', ') || '(none)'}`);
  process.exit(2);
}

async function dispatch(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (!name) usage('no bench named');
  if (!availableBenches().includes(name)) usage(`unknown bench "${name}"`);
  const mod = (await import(`./${name}.js`)) as BenchModule;
  if (typeof mod.main !== 'function') usage(`bench "${name}" exports no main(args)`);
  await mod.main(args);
}

try {
  await dispatch(process.argv.slice(2));
} catch (err) {
  // Benches throw errors named UsageError for bad arguments: no stack trace for those.
  const e = err as Error;
  if (e.name === 'UsageError') console.error(`bench: ${e.message}`);
  else console.error(`bench failed: ${e.stack ?? String(e)}`);
  process.exitCode = e.name === 'UsageError' ? 2 : 1;
}
