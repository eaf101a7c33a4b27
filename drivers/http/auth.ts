// How an HTTP device proves who it is. Bearer: the SHA-256 of its token is configured.
// Basic: a username and an scrypt hash (scrypt is slow on purpose, so a verified header
// is remembered by its SHA-256 for a while). HMAC: `x-outpost-timestamp: <unix s>` and
// `x-outpost-signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, the
// timestamp within toleranceS of now (a replayed request goes stale).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { sha256Hex, verifyPassword } from '../../gateway/kernel/secrets.js';
import type { HttpAuth } from './schema.js';

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string): string => {
  const v = h[name];
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
};
const sameHex = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));

const BASIC_CACHE_MS = 300_000;

export class DeviceAuth {
  private basicOk: { digest: string; until: number } | null = null;

  constructor(private readonly auth: HttpAuth | undefined) {}

  /** null when the request is this device's; else the reason (counted, never told to the caller). */
  async check(headers: Headers, body: Buffer, now: number): Promise<string | null> {
    const a = this.auth;
    if (!a) return 'push_not_configured';
    const authz = header(headers, 'authorization');
    if (a.bearer) {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      if (!m) return 'no_token';
      return sameHex(sha256Hex(m[1]), a.bearer.sha256) ? null : 'bad_token';
    }
    if (a.basic) {
      const m = /^Basic\s+(\S+)$/i.exec(authz);
      if (!m) return 'no_credentials';
      const digest = createHash('sha256').update(m[1]).digest('hex');
      if (this.basicOk && this.basicOk.digest === digest && now < this.basicOk.until) return null;
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0 || decoded.slice(0, colon) !== a.basic.username) return 'bad_credentials';
      if (!(await verifyPassword(decoded.slice(colon + 1), a.basic.passwordHash))) return 'bad_credentials';
      this.basicOk = { digest, until: now + BASIC_CACHE_MS };
      return null;
    }
    if (!a.hmac) return 'no_auth_configured';
    const secret = process.env[a.hmac.secretEnv];
    if (!secret) return 'no_secret_configured';
    const ts = Number(header(headers, 'x-outpost-timestamp'));
    const sig = /^sha256=([0-9a-f]{64})$/i.exec(header(headers, 'x-outpost-signature'))?.[1];
    if (!Number.isInteger(ts) || !sig) return 'no_signature';
    if (Math.abs(now / 1000 - ts) > a.hmac.toleranceS) return 'stale_signature';
    const expected = createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex');
    return sameHex(sig.toLowerCase(), expected) ? null : 'bad_signature';
  }
}
