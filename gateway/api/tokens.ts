// API bearer tokens. Configured tokens are stored as SHA-256 digests. With none
// configured, the first start creates an admin token in <dataDir>/admin.token (0600)
// and logs the path — never the token — so an installer can read it with sudo.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiTokenConfig, Role } from '../../config/schema.js';
import type { Logger } from '../log.js';
import { newApiToken, sha256Hex } from '../secrets.js';

export interface TokenIdentity {
  name: string;
  role: Role;
  /** Lock groups this identity may operate ("*" = all). */
  doorGroups: readonly string[];
  /** Its own request budget, when it has one (else http.rateLimit.requests). */
  rateLimit?: { max: number; windowS: number };
}

export interface TokenStore {
  verify(token: string): TokenIdentity | undefined;
  /** Where the generated admin token lives, when one was generated. */
  adminTokenFile: string | null;
}

export const ADMIN_TOKEN_FILE = 'admin.token';

export function readOrCreateAdminToken(dataDir: string): { token: string; created: boolean; file: string } {
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), created: false, file };
  mkdirSync(dataDir, { recursive: true });
  const token = newApiToken();
  writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { token, created: true, file };
}

export function loadTokens(configured: readonly ApiTokenConfig[], dataDir: string, log: Logger): TokenStore {
  const byHash = new Map<string, TokenIdentity>();
  for (const t of configured) byHash.set(t.sha256, { name: t.name, role: t.role, doorGroups: t.doorGroups, ...(t.rateLimit ? { rateLimit: t.rateLimit } : {}) });
  let adminTokenFile: string | null = null;
  if (configured.length === 0) {
    const { token, created, file } = readOrCreateAdminToken(dataDir);
    byHash.set(sha256Hex(token), { name: 'generated-admin', role: 'admin', doorGroups: ['*'] });
    adminTokenFile = file;
    log.info({ file }, created ? 'no API tokens configured: created an admin token' : 'no API tokens configured: using the admin token file');
  }
  return { verify: (token) => byHash.get(sha256Hex(token)), adminTokenFile };
}
