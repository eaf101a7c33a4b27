// Gateway credentials for the cloud: obtained once by `outpost enroll` (a one-time token
// exchanged for a per-gateway secret) and kept in the data dir, readable by the daemon's
// user only (0600). Written atomically, so a power cut never leaves half a file.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Dispatcher } from 'undici';
import { httpCall } from './client.js';
import type { EnrollRequest, EnrollResponse } from './protocol.js';

export interface Credentials {
  cloud: string;
  gatewayId: string;
  site: string;
  secret: string;
  enrolledAt: string;
}

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

export function readCredentials(path: string): Credentials | null {
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CredentialsError(`${path}: not valid JSON (${(err as Error).message}); run \`outpost enroll\` again`);
  }
  const c = parsed as Partial<Credentials>;
  for (const k of ['cloud', 'gatewayId', 'site', 'secret'] as const) {
    if (typeof c[k] !== 'string' || c[k] === '') throw new CredentialsError(`${path}: "${k}" is missing; run \`outpost enroll\` again`);
  }
  return c as Credentials;
}

export function writeCredentials(path: string, c: Credentials): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Exchanges a one-time enrollment token for this gateway's secret. */
export async function enroll(dispatcher: Dispatcher, cloud: string, req: EnrollRequest): Promise<Credentials> {
  const base = cloud.replace(/\/+$/, '');
  const res = await httpCall(dispatcher, `${base}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(req),
  });
  const text = res.body.toString('utf8');
  if (res.status !== 200) {
    let why = text;
    try {
      why = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      /* not JSON: keep the text */
    }
    throw new CredentialsError(`enrollment at ${base} refused (HTTP ${res.status}): ${why}`);
  }
  const body = JSON.parse(text) as EnrollResponse;
  if (typeof body.secret !== 'string' || body.gatewayId !== req.gatewayId)
    throw new CredentialsError(`enrollment at ${base}: unexpected answer`);
  return { cloud: base, gatewayId: body.gatewayId, site: body.site, secret: body.secret, enrolledAt: new Date().toISOString() };
}
