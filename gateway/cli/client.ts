// How CLI commands reach a running gateway: its local API on loopback, with a token from
// --token, OUTPOST_TOKEN, or the generated <dataDir>/admin.token.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import { ADMIN_TOKEN_FILE } from '../api/tokens.js';

export interface ApiTarget {
  url: string;
  token: string | undefined;
}

export function apiTarget(config: SiteConfig, opts: { url?: string; token?: string }): ApiTarget {
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  const url = opts.url ?? `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  let token = opts.token ?? process.env.OUTPOST_TOKEN;
  if (!token) {
    try {
      token = readFileSync(join(resolve(config.dataDir), ADMIN_TOKEN_FILE), 'utf8').trim();
    } catch {
      token = undefined;
    }
  }
  return { url, token };
}

export class ApiUnreachable extends Error {}

export async function apiCall<T>(target: ApiTarget, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(target.url + path, {
      method: init.method ?? 'GET',
      headers: {
        ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ApiUnreachable(`no gateway answering at ${target.url} (${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message})`);
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) {
    const hint = res.status === 401 ? ' (pass --token or set OUTPOST_TOKEN; the generated one is in <dataDir>/admin.token)' : '';
    throw new Error(`${target.url}${path}: HTTP ${res.status}: ${body.error ?? 'error'}${hint}`);
  }
  return body;
}
