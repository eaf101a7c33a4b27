// API bearer tokens. Configured tokens are stored as SHA-256 digests. With none
// configured, the first start creates an admin token in <dataDir>/admin.token (0600)
// and logs the path — never the token — so an installer can read it with sudo.
import type { TokenIdentity } from '../contract/api.js';
import type { ApiTokenConfig } from '../../config/schema.js';
import type { Logger } from '../kernel/log.js';
import { readOrCreateAdminToken, sha256Hex } from '../kernel/secrets.js';

export interface TokenStore {
  verify(token: string): TokenIdentity | undefined;
  /** Where the generated admin token lives, when one was generated. */
  adminTokenFile: string | null;
}

export function loadTokens(configured: readonly ApiTokenConfig[], dataDir: string, log: Logger): TokenStore {
  const byHash = new Map<string, TokenIdentity>();
  for (const t of configured)
    byHash.set(t.sha256, { name: t.name, role: t.role, doorGroups: t.doorGroups, ...(t.rateLimit ? { rateLimit: t.rateLimit } : {}) });
  let adminTokenFile: string | null = null;
  if (configured.length === 0) {
    const { token, created, file } = readOrCreateAdminToken(dataDir);
    byHash.set(sha256Hex(token), { name: 'generated-admin', role: 'admin', doorGroups: ['*'] });
    adminTokenFile = file;
    log.info(
      { file },
      created ? 'no API tokens configured: created an admin token' : 'no API tokens configured: using the admin token file',
    );
  }
  return { verify: (token) => byHash.get(sha256Hex(token)), adminTokenFile };
}
