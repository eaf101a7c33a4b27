// What every bench prints, in one shape: progress lines on stderr while it runs, then its
// figures as one JSON document on stdout ({ bench, …figures, machine }) and one summary line.
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { round } from './stats.js';

/** A progress line on stderr (stdout stays JSON + summary). */
export function progress(bench: string): (line: string) => void {
  return (line) => process.stderr.write(`${bench}: ${line}\n`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function printReport(bench: string, figures: Record<string, unknown>, summary: string): void {
  // The machine the figures come from: on a loaded or small box they mean less.
  const [cpu, memoryGiB, load] = [cpus()[0]?.model ?? null, round(totalmem() / 2 ** 30, 1), loadavg().map((x) => round(x, 2))];
  const machine = {
    cpus: cpus().length,
    availableParallelism: availableParallelism(),
    cpu,
    memoryGiB,
    loadavg: load,
    node: process.version,
  };
  console.log(JSON.stringify({ bench, ...figures, machine }, null, 2));
  console.log(summary);
}
