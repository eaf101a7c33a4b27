// HTTPS for the local API. Bearer tokens must not cross the site LAN in clear, so an API
// that listens off loopback serves HTTPS unless told otherwise: with the installer's
// certificate when one is configured, else with a self-signed one generated once into
// <dataDir>/tls (its fingerprint and public-key pin are shown by `outpost status`, so a
// client can pin it). On loopback plain HTTP stays the default: nothing leaves the box.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { Logger } from '../kernel/log.js';
import { publicKeyPin, selfSignedCertificate } from '../kernel/x509.js';

type HttpConfig = SiteConfig['http'];

const GENERATED_CERT = join('tls', 'api-cert.pem');
const GENERATED_KEY = join('tls', 'api-key.pem');

export interface ApiTls {
  cert: string;
  key: string;
  source: 'configured' | 'generated';
  certFile: string;
  keyFile: string;
  fingerprint256: string;
  /** For `curl --pinnedpubkey`. */
  pin: string;
  validTo: string;
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./.test(host);
}

/** Whether the API serves HTTPS with this config (also what the CLI uses to reach it). */
export function tlsEnabled(http: Pick<HttpConfig, 'host' | 'tls'>): boolean {
  if (http.tls.mode === 'on') return true;
  if (http.tls.mode === 'off') return false;
  return http.tls.cert !== undefined || !isLoopbackHost(http.host);
}

/** The key and certificate files the API uses (configured, or the generated pair). */
export function tlsFiles(http: Pick<HttpConfig, 'tls'>, dataDir: string): { certFile: string; keyFile: string; source: ApiTls['source'] } {
  if (http.tls.cert && http.tls.key) return { certFile: resolve(http.tls.cert), keyFile: resolve(http.tls.key), source: 'configured' };
  return { certFile: join(resolve(dataDir), GENERATED_CERT), keyFile: join(resolve(dataDir), GENERATED_KEY), source: 'generated' };
}

/** Names a client may use to reach this box: loopback, the host name, every interface address. */
function localNames(host: string): string[] {
  const names = ['localhost', hostname(), '127.0.0.1', '::1'];
  if (!['0.0.0.0', '::', ''].includes(host)) names.push(host);
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) names.push(a.address.replace(/%.*$/, ''));
  }
  return names;
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

/** The API's TLS material, generating the self-signed pair on first use; null for plain HTTP. */
export function resolveApiTls(http: HttpConfig, dataDir: string, log: Logger): ApiTls | null {
  if (!tlsEnabled(http)) {
    if (!isLoopbackHost(http.host)) {
      log.warn(
        { host: http.host, port: http.port },
        'the local API serves plain HTTP off loopback: API tokens cross the network in clear (set http.tls.mode: auto)',
      );
    }
    return null;
  }
  const { certFile, keyFile, source } = tlsFiles(http, dataDir);
  if (source === 'generated') {
    const expired = existsSync(certFile) && Date.parse(new X509Certificate(readFileSync(certFile)).validTo) < Date.now();
    if (!existsSync(certFile) || !existsSync(keyFile) || expired) {
      mkdirSync(join(resolve(dataDir), 'tls'), { recursive: true, mode: 0o700 });
      const s = selfSignedCertificate(`outpost ${hostname()}`, localNames(http.host));
      writeAtomic(keyFile, s.keyPem, 0o600);
      writeAtomic(certFile, s.certPem, 0o644);
      log.info(
        { certFile, fingerprint256: s.cert.fingerprint256, expiredBefore: expired },
        'generated a self-signed certificate for the local API',
      );
    }
  }
  const cert = readFileSync(certFile, 'utf8');
  const key = readFileSync(keyFile, 'utf8');
  const x = new X509Certificate(cert);
  return {
    cert,
    key,
    source,
    certFile,
    keyFile,
    fingerprint256: x.fingerprint256,
    pin: publicKeyPin(x),
    validTo: new Date(x.validTo).toISOString(),
  };
}

/** What `outpost status` shows of the TLS setup: never the key, only where it is. */
export function apiTlsSummary(t: ApiTls): {
  source: ApiTls['source'];
  certFile: string;
  fingerprint256: string;
  pin: string;
  validTo: string;
} {
  return { source: t.source, certFile: t.certFile, fingerprint256: t.fingerprint256, pin: t.pin, validTo: t.validTo };
}
