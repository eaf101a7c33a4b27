// Secret files at rest: the generated admin token, the cloud credentials, TLS keys, a
// staged config from the cloud, and a site config that holds passwords inline. Each is
// checked before the gateway starts: a secret other users can read is refused (the
// gateway will not run with it), one the file's group can read is warned about. The
// message names the file, what it is, and the command that fixes it.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';

export interface SecretFile {
  path: string;
  /** What it holds, for the message ("the cloud credentials"). */
  what: string;
}

export class SecretFileError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `refusing to start: ${problems.length === 1 ? 'a secret file is' : 'secret files are'} readable by other users:\n  ${problems.join('\n  ')}`,
    );
    this.name = 'SecretFileError';
  }
}

const octal = (mode: number) => '0' + (mode & 0o777).toString(8);

/** Problems (refuse) and warnings for the files that exist; missing files are not checked. */
function checkSecretFiles(files: readonly SecretFile[]): { problems: string[]; warnings: string[] } {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const f of files) {
    const path = resolve(f.path);
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      continue;
    }
    if (mode & 0o007)
      problems.push(`${path} (${f.what}) has mode ${octal(mode)}, so every user of this box can read it: run \`chmod 600 ${path}\``);
    else if (mode & 0o070)
      warnings.push(`${path} (${f.what}) has mode ${octal(mode)}: its group can read it (chmod 600 unless that group is meant to)`);
  }
  return { problems, warnings };
}

/** Throws SecretFileError listing every world-readable secret; returns the warnings. */
export function assertSecretFiles(files: readonly SecretFile[]): string[] {
  const { problems, warnings } = checkSecretFiles(files);
  if (problems.length > 0) throw new SecretFileError(problems);
  return warnings;
}

/** True when a URL carries a password (`rtsp://user:pass@cam/...`). */
export function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}
