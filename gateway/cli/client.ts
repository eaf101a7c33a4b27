// How CLI commands reach a running gateway: its local API on loopback, with a token from
// --token, OUTPOST_TOKEN, or the generated <dataDir>/admin.token. When the API serves
// HTTPS the CLI trusts exactly the certificate it finds on this box (the configured one
// or the generated one in <dataDir>/tls): its SHA-256 fingerprint is pinned, so the
// token is only ever sent to this gateway, whatever name or address it is reached by.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rootCertificates, type PeerCertificate } from 'node:tls';
import { Agent, request, type Dispatcher } from 'undici';
import type { SiteConfig } from '../../config/schema.js';
import { tlsEnabled, tlsFiles } from '../api/tls.js';
import { ADMIN_TOKEN_FILE } from '../kernel/secrets.js';

export interface ApiTarget {
  url: string;
  token: string | undefined;
  /** PEM of the certificate to pin when the API is HTTPS and the file is readable here. */
  pinnedCert?: string;
}

export function apiTarget(config: SiteConfig, opts: { url?: string; token?: string }): ApiTarget {
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  const https = tlsEnabled(config.http);
  const url = opts.url ?? `${https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  let token = opts.token ?? process.env.OUTPOST_TOKEN;
  if (!token) {
    try {
      token = readFileSync(join(resolve(config.dataDir), ADMIN_TOKEN_FILE), 'utf8').trim();
    } catch {
      token = undefined;
    }
  }
  let pinnedCert: string | undefined;
  if (url.startsWith('https:')) {
    try {
      pinnedCert = readFileSync(tlsFiles(config.http, config.dataDir).certFile, 'utf8');
    } catch {
      pinnedCert = undefined; // not readable here: fall back to the system CAs
    }
  }
  return { url, token, ...(pinnedCert ? { pinnedCert } : {}) };
}

export class ApiUnreachable extends Error {}

function dispatcherFor(target: ApiTarget): Dispatcher | undefined {
  if (!target.pinnedCert) return undefined;
  const expected = new X509Certificate(target.pinnedCert).fingerprint256;
  return new Agent({
    connect: {
      ca: [...rootCertificates, target.pinnedCert],
      checkServerIdentity: (_host: string, cert: PeerCertificate) =>
        cert.fingerprint256 === expected
          ? undefined
          : new Error(`the gateway's certificate (${cert.fingerprint256}) is not the one on this box (${expected})`),
    },
  });
}

export async function apiCall<T>(target: ApiTarget, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const dispatcher = dispatcherFor(target);
  let status: number;
  let text: string;
  try {
    const res = await request(target.url + path, {
      method: init.method ?? 'GET',
      headers: {
        ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    const e = err as Error & { cause?: Error; code?: string };
    const why = e.cause?.message ?? e.code ?? e.message;
    if (target.pinnedCert && /CERT|SELF_SIGNED|not the one on this box/.test(`${e.code ?? ''} ${why}`)) {
      throw new Error(
        `the gateway at ${target.url} presents a certificate that is not the one on this box (${why}); the token was not sent`,
        { cause: err },
      );
    }
    throw new ApiUnreachable(`no gateway answering at ${target.url} (${why})`);
  } finally {
    void dispatcher?.close();
  }
  let body = {} as T & { error?: string };
  try {
    body = JSON.parse(text) as T & { error?: string };
  } catch {
    /* not JSON: keep {} */
  }
  if (status < 200 || status >= 300) {
    const hint = status === 401 ? ' (pass --token or set OUTPOST_TOKEN; the generated one is in <dataDir>/admin.token)' : '';
    throw new Error(`${target.url}${path}: HTTP ${status}: ${body.error ?? 'error'}${hint}`);
  }
  return body;
}
