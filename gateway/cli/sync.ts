// `outpost enroll` (exchange a one-time token for this gateway's cloud credentials) and
// `outpost sync status` (the running gateway's upload backlog, circuit and last error).
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { SiteConfig } from '../../config/schema.js';
import type { SyncStatus } from '../../sync/uploader.js';
import { apiCall, apiTarget } from './client.js';

export async function runEnroll(
  config: SiteConfig,
  o: { cloud: string; token: string; gatewayId?: string; name?: string; caFile?: string; insecure?: boolean },
): Promise<string> {
  const { enroll, writeCredentials } = await import('../../sync/credentials.js');
  const { makeAgent } = await import('../../sync/client.js');
  const gatewayId = o.gatewayId ?? `${config.site}-${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}`.slice(0, 64);
  const tls = { ...config.sync.tls, ...(o.caFile ? { caFile: o.caFile } : {}), ...(o.insecure ? { insecureSkipVerify: true } : {}) };
  const agent = makeAgent({ timeouts: config.sync.timeouts, tls });
  try {
    const creds = await enroll(agent, o.cloud, { token: o.token, gatewayId, site: config.site, ...(o.name ? { name: o.name } : {}) });
    const file = resolve(config.dataDir, config.sync.credentialsFile);
    writeCredentials(file, creds);
    const hint = config.sync.enabled
      ? 'the running gateway picks them up within seconds'
      : 'set sync.enabled: true in the site file and restart';
    return `enrolled as ${creds.gatewayId} (site ${creds.site}) at ${creds.cloud}; credentials written to ${file} (0600); ${hint}`;
  } finally {
    await agent.close();
  }
}

const age = (ts: number | null) => (ts === null ? '-' : `${Math.round((Date.now() - ts) / 1000)}s ago`);

export async function runSyncStatus(config: SiteConfig, opts: { url?: string; token?: string; json?: boolean }): Promise<string> {
  const s = await apiCall<SyncStatus | { enabled: false }>(apiTarget(config, opts), '/api/v1/sync');
  if (opts.json) return JSON.stringify(s, null, 2);
  if (!s.enabled) return 'sync is disabled (sync.enabled: false)';
  const lines = [
    `gateway ${s.gatewayId ?? '(not enrolled)'} → ${s.cloud ?? '(no cloud URL)'}: circuit ${s.circuit}${s.consecutiveFailures ? `, ${s.consecutiveFailures} failures in a row` : ''}`,
    `last success ${age(s.lastSuccessAt)}${s.nextAttemptAt ? `, next attempt in ${Math.max(0, Math.round((s.nextAttemptAt - Date.now()) / 1000))}s` : ''}${s.lastError ? `; last error: ${s.lastError}` : ''}`,
    ...Object.entries(s.streams).map(
      ([name, st]) =>
        `${name.padEnd(9)} backlog ${st.backlogRows} rows (~${(st.backlogBytes / 1048576).toFixed(1)} MiB), oldest unsent ${age(st.oldestUnsentTs)}, acked seq ${st.ackedSeq}, dropped ${st.dropped}`,
    ),
  ];
  return lines.join('\n');
}
