// `outpost run`: start the daemon and stop it cleanly on SIGTERM/SIGINT within the
// configured deadline (systemd's stop timeout should be longer than it).
import type { SiteConfig } from '../../config/schema.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../kernel/log.js';
import { stopOnSignals } from './shutdown.js';

export async function runDaemon(config: SiteConfig, configPath: string): Promise<void> {
  const log = createLogger(config.log.level);
  log.info({ config: configPath }, 'starting outpost');
  // Last-resort guards: a bug in one handler must not take the site's gateway down.
  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (kept running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept running)'));
  let gw: Gateway;
  try {
    gw = await Gateway.start({ config, log, configFile: configPath });
  } catch (err) {
    log.fatal({ err }, `could not start: ${(err as Error).message}`);
    process.exitCode = 1;
    return;
  }
  stopOnSignals((signal) => gw.stop(signal), config.shutdownTimeoutMs, log);
}
