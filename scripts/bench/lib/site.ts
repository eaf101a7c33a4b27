// The site config every bench gateway starts from, and the in-process start: the API on
// loopback with no rate limit in the way (benches scrape it far faster than a site would),
// retention that never runs mid-run (it would scan the table), the drivers a bench does not
// name switched off.
import type { Gateway } from '../../../gateway/gateway.js';
import { LOOPBACK } from './procs.js';

export function benchSite(dataDir: string, own: { drivers?: Record<string, unknown>; [key: string]: unknown }): Record<string, unknown> {
  const rateLimit = { authFailures: { max: 1e6 }, requests: { max: 1e9 } };
  return {
    site: 'bench',
    dataDir,
    log: { level: 'silent' },
    store: { retention: { checkIntervalS: 86_400 } },
    http: { host: LOOPBACK, port: 0, tokens: [], rateLimit },
    ...own,
    drivers: { mqtt: { enabled: false }, simulator: { enabled: false }, ...own.drivers },
  };
}

// Gateway.start on a parsed site config, in this process, silent; with its start-up time. The
// gateway's modules load here, not on import: the ingest and sync bench processes never load them.
export async function startGateway(site: Record<string, unknown>, name: string): Promise<{ gw: Gateway; startSeconds: number }> {
  const [{ pino }, { parseConfig }, { Gateway }] = await Promise.all([
    import('pino'),
    import('../../../config/site.js'),
    import('../../../gateway/gateway.js'),
  ]);
  const t0 = performance.now();
  const gw = await Gateway.start({ config: parseConfig(JSON.stringify(site), name), log: pino({ level: 'silent' }) });
  return { gw, startSeconds: (performance.now() - t0) / 1000 };
}
