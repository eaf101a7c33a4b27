// Where the installed package lives (compiled code is in dist/gateway/kernel, sources in
// gateway/kernel: the root is two or three folders up) and its version, read once from
// package.json so there is one place to bump it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const PACKAGE_ROOT =
  [join(here, '..', '..', '..'), join(here, '..', '..')].find((d) => existsSync(join(d, 'package.json'))) ?? join(here, '..', '..', '..');

export const VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
