// Runs the built `outpost` CLI as a child process, as an installer would, and returns
// its exit code and output (never throws for a non-zero exit).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../../config/site.js';

export const CLI = join(PACKAGE_ROOT, 'dist/gateway/cli.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function outpost(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
