// Who is calling: gateways sign every request with their enrollment secret (HMAC, see
// sync/protocol.ts); the central office uses bearer tokens with a role. The header check
// runs before the body is read, so unknown or stale callers cannot make us buffer 32 MiB.
import type { Logger } from '../../gateway/kernel/log.js';
import { sha256Hex } from '../../gateway/kernel/secrets.js';
import { MAX_CLOCK_SKEW_MS, parseAuthorization, verifySignature, type ParsedAuth } from '../protocol.js';
import type { CloudConfig } from './config.js';
import type { CloudStore, GatewayCredentials } from './store.js';
import { readOrCreateAdminToken } from '../../gateway/kernel/secrets.js';
import type { Role } from '../../gateway/kernel/schema-kit.js';
import { ROLES } from '../../gateway/kernel/schema-kit.js';

export interface OfficeIdentity {
  name: string;
  role: Role;
}

export interface OfficeTokens {
  verify(token: string): OfficeIdentity | undefined;
  /** The generated admin token file, when no tokens are configured. */
  adminTokenFile: string | null;
}

// admin > operator > viewer
const RANK = Object.fromEntries(ROLES.map((r, i) => [r, ROLES.length - i])) as Record<Role, number>;
export const roleAllows = (have: Role, need: Role) => RANK[have] >= RANK[need];

/** Configured tokens by sha256; with none, a generated admin token in <dataDir>/admin.token (0600). */
export function loadOfficeTokens(configured: CloudConfig['tokens'], dataDir: string, log: Logger): OfficeTokens {
  const byHash = new Map<string, OfficeIdentity>(configured.map((t) => [t.sha256, { name: t.name, role: t.role }]));
  let adminTokenFile: string | null = null;
  if (configured.length === 0) {
    const { token, created, file } = readOrCreateAdminToken(dataDir);
    byHash.set(sha256Hex(token), { name: 'generated-admin', role: 'admin' });
    adminTokenFile = file;
    log.info(
      { file },
      created ? 'no office tokens configured: created an admin token' : 'no office tokens configured: using the admin token file',
    );
  }
  return { verify: (token) => byHash.get(sha256Hex(token)), adminTokenFile };
}

export interface GatewayAuthFailure {
  error: string;
  /** Set when the timestamp was refused, so the gateway can correct its clock offset. */
  serverTime?: number;
}

export interface GatewayHeaderOk {
  gateway: GatewayCredentials;
  auth: ParsedAuth;
}

const TOUCH_INTERVAL_MS = 30_000;

export class GatewayAuthenticator {
  // last_seen is written at most every 30 s per gateway: polls must not each cost a commit.
  private readonly touched = new Map<string, number>();

  constructor(private readonly store: CloudStore) {}

  /** Everything that can be checked without the body: scheme, clock skew, known gateway. */
  async checkHeader(header: string | undefined, now = Date.now()): Promise<GatewayHeaderOk | GatewayAuthFailure> {
    const auth = parseAuthorization(header);
    if (!auth) return { error: 'authorization: expected "Outpost-HMAC gw=<id>, ts=<ms>, sig=<64 hex>"' };
    if (Math.abs(now - auth.ts) > MAX_CLOCK_SKEW_MS) {
      return {
        error: `authorization: ts ${auth.ts} is more than ${MAX_CLOCK_SKEW_MS / 1000} s from the server time ${now}`,
        serverTime: now,
      };
    }
    const gateway = await this.store.gatewayCredentials(auth.gatewayId);
    // Same message for unknown gateways and bad signatures: no enumeration of gateway ids.
    if (!gateway) return { error: 'authorization: unknown gateway or bad signature' };
    return { gateway, auth };
  }

  checkSignature(ok: GatewayHeaderOk, method: string, pathWithQuery: string, key: string, body: Uint8Array): GatewayAuthFailure | null {
    return verifySignature(ok.gateway.secret, ok.auth, method, pathWithQuery, key, body)
      ? null
      : { error: 'authorization: unknown gateway or bad signature' };
  }

  async touch(gatewayId: string, now = Date.now()): Promise<void> {
    const last = this.touched.get(gatewayId) ?? 0;
    if (now - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(gatewayId, now);
    await this.store.touchGateway(gatewayId);
  }
}
