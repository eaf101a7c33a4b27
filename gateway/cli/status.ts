// `outpost status`: asks the running gateway how it is doing.
import type { SiteConfig } from '../../config/schema.js';
import type { DriverStatus } from '../supervisor.js';
import type { EndpointStatus } from '../webhooks/service.js';
import { apiCall, apiTarget } from './client.js';

interface StatusBody {
  site: string;
  version: string;
  phase: string;
  uptimeS: number;
  drivers: Record<string, DriverStatus>;
  store: { path: string; queuedRows: number; nextSeq: { readings: number; events: number } };
  devices: number;
  api: {
    url: string;
    host: string;
    port: number;
    tls: { source: string; certFile: string; fingerprint256: string; pin: string; validTo: string } | null;
  } | null;
  webhooks?: Record<string, EndpointStatus>;
  rssBytes: number;
}

export async function runStatus(config: SiteConfig, opts: { url?: string; token?: string; json?: boolean }): Promise<string> {
  const s = await apiCall<StatusBody>(apiTarget(config, opts), '/api/v1/status');
  if (opts.json) return JSON.stringify(s, null, 2);
  const lines = [
    `site ${s.site}  outpost ${s.version}  ${s.phase}  up ${s.uptimeS}s  rss ${(s.rssBytes / 1048576).toFixed(0)} MiB`,
    `store ${s.store.path}: last seq readings ${s.store.nextSeq.readings - 1}, events ${s.store.nextSeq.events - 1}; ${s.store.queuedRows} rows queued`,
    `devices ${s.devices}`,
    ...(s.api
      ? [
          s.api.tls
            ? `api https on ${s.api.host}:${s.api.port}, ${s.api.tls.source} certificate ${s.api.tls.certFile} (valid to ${s.api.tls.validTo})\n  SHA-256 fingerprint ${s.api.tls.fingerprint256}\n  public-key pin ${s.api.tls.pin}  (curl --pinnedpubkey)`
            : `api plain http on ${s.api.host}:${s.api.port}`,
        ]
      : []),
    ...Object.entries(s.drivers).map(
      ([name, d]) =>
        `driver ${name}: ${d.state}${d.ok ? '' : ' (unhealthy)'}${d.restarts ? `, ${d.restarts} restarts` : ''}${d.lastError ? `, last error: ${d.lastError}` : ''}${d.detail ? `\n  ${d.detail}` : ''}`,
    ),
    ...Object.entries(s.webhooks ?? {}).map(
      ([id, w]) =>
        `webhook ${id}: ${w.disabled ? 'disabled (410 Gone)' : 'enabled'}, ${w.pending} pending, ${w.inFlight} in flight${w.lastError ? `, last error: ${w.lastError}${w.lastErrorAt ? ` (${new Date(w.lastErrorAt).toISOString()})` : ''}` : ''}`,
    ),
  ];
  return lines.join('\n');
}
