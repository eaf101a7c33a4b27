// Reading another process's resource use from /proc (Linux), for the benches.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | null = null;
function clockTicks(): number {
  if (ticks === null) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100; // the Linux default
    }
  }
  return ticks;
}

/** User + system CPU seconds of a process from /proc/<pid>/stat; null if unreadable. */
export function procCpuSeconds(pid: number): number | null {
  try {
    // Fields after the ")" of comm start at field 3, so utime (14) and stime (15) are 11 and 12.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clockTicks();
  } catch {
    return null;
  }
}
