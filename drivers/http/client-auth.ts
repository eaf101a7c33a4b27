// Credentials Outpost sends to a device it calls (polls and writes), read from the
// environment at call time so a rotated secret needs no config change.
import type { HttpClientAuth } from './schema.js';

export function clientAuthHeaders(auth: HttpClientAuth | undefined): Record<string, string> {
  if (!auth) return {};
  if (auth.bearerEnv) {
    const token = process.env[auth.bearerEnv];
    return token ? { authorization: `Bearer ${token}` } : {};
  }
  if (auth.basic) {
    const password = process.env[auth.basic.passwordEnv] ?? '';
    return { authorization: `Basic ${Buffer.from(`${auth.basic.username}:${password}`).toString('base64')}` };
  }
  return {};
}
