// `outpost cloud` (run the cloud API that gateways sync to) and `outpost cloud-token`
// (mint a one-time enrollment token). Only commander loads here; the server, fastify and
// DuckDB load inside the actions.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { newApiToken, sha256Hex } from '../kernel/secrets.js';
import { stopOnSignals } from './shutdown.js';
import { ADMIN_TOKEN_FILE } from '../kernel/secrets.js';

const SHUTDOWN_DEADLINE_MS = 15_000;

/** `90`, `90s`, `15m`, `24h`, `7d` → seconds. */
function parseTtl(v: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new Error(`--ttl "${v}": use seconds or a number with s/m/h/d, e.g. 24h`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

async function runCloud(configPath: string): Promise<void> {
  const { loadCloudConfigFile } = await import('../../sync/cloud/config.js');
  const { startCloudServer } = await import('../../sync/cloud/server.js');
  const { createLogger } = await import('../kernel/log.js');
  const config = loadCloudConfigFile(configPath);
  const log = createLogger(config.log.level, { name: 'outpost-cloud' });
  log.info({ config: configPath }, 'starting outpost cloud API');
  let server;
  try {
    server = await startCloudServer(config, log);
  } catch (err) {
    log.fatal({ err }, `could not start: ${(err as Error).message}`);
    process.exitCode = 1;
    return;
  }
  const running = server;
  stopOnSignals(
    (signal) => {
      log.info({ signal }, 'stopping cloud API');
      return running.close();
    },
    SHUTDOWN_DEADLINE_MS,
    log,
  );
}

interface TokenOptions {
  config: string;
  site: string;
  gateway?: string;
  ttl: string;
  url?: string;
  token?: string;
  offline?: boolean;
}

async function mintToken(o: TokenOptions): Promise<string> {
  const ttlSeconds = parseTtl(o.ttl);
  const { loadCloudConfigFile } = await import('../../sync/cloud/config.js');
  const config = loadCloudConfigFile(o.config);
  if (o.offline) {
    // For bootstrap: the cloud learns the sha256 from its config file at the next start.
    const token = newApiToken().replace(/^opt_/, 'oet_');
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
    const entry = [
      `  - sha256: ${sha256Hex(token)}`,
      `    site: ${o.site}`,
      ...(o.gateway ? [`    gatewayId: ${o.gateway}`] : []),
      `    expiresAt: "${expiresAt}"`,
    ];
    return `enrollment token (shown once, usable once): ${token}\n\nadd under enrollmentTokens: and restart the cloud:\n${entry.join('\n')}`;
  }
  const host = ['0.0.0.0', '::', ''].includes(config.http.host) ? '127.0.0.1' : config.http.host;
  const url = o.url ?? `${config.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  let token = o.token ?? process.env.OUTPOST_CLOUD_TOKEN;
  if (!token) {
    try {
      token = readFileSync(join(resolve(config.dataDir), ADMIN_TOKEN_FILE), 'utf8').trim();
    } catch {
      throw new Error(
        `no admin token: pass --token, set OUTPOST_CLOUD_TOKEN, or run where ${join(config.dataDir, ADMIN_TOKEN_FILE)} is readable`,
      );
    }
  }
  let res: Response;
  try {
    res = await fetch(`${url}/api/v1/enrollment-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ site: o.site, ...(o.gateway ? { gatewayId: o.gateway } : {}), ttlSeconds }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new Error(`no cloud API answering at ${url} (${(err as Error).message}); use --offline to make a config entry instead`, {
      cause: err,
    });
  }
  const body = (await res.json().catch(() => ({}))) as { token?: string; expiresAt?: string; error?: string };
  if (!res.ok || !body.token) throw new Error(`${url}: HTTP ${res.status}: ${body.error ?? 'no token in the answer'}`);
  return `enrollment token (shown once, usable once, expires ${body.expiresAt}): ${body.token}`;
}

export function registerCloudCommands(program: Command): void {
  program
    .command('cloud')
    .description('run the cloud API that gateways sync to (stops cleanly on SIGTERM/SIGINT); see sync/cloud/README.md')
    .requiredOption('-c, --config <file>', 'cloud config (YAML)')
    .action(async (o: { config: string }) => {
      await runCloud(o.config);
    });

  program
    .command('cloud-token')
    .description('mint a one-time gateway enrollment token on a running cloud API (or, with --offline, a config entry)')
    .requiredOption('-c, --config <file>', 'cloud config (YAML)')
    .requiredOption('-s, --site <site>', 'site the gateway belongs to')
    .option('-g, --gateway <id>', 'only this gateway id may enroll with it')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 24h, 7d', '24h')
    .option('--url <url>', 'cloud API base URL (default: from the config, on loopback)')
    .option('--token <token>', 'office admin token (default: $OUTPOST_CLOUD_TOKEN or <dataDir>/admin.token)')
    .option('--offline', 'do not contact the cloud: print a token and its enrollmentTokens config entry')
    .action(async (o: TokenOptions) => {
      console.log(await mintToken(o));
    });
}
