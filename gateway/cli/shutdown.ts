// Clean stop on SIGTERM/SIGINT for the long-running commands (`run`, `cloud`): stop once,
// exit 0 when done, and exit 1 if stopping fails or overruns the deadline (systemd's own
// stop timeout should be longer).
import type { Logger } from '../kernel/log.js';

export function stopOnSignals(stop: (signal: string) => Promise<void>, deadlineMs: number, log: Logger): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed; exiting now');
      process.exit(1);
    }, deadlineMs).unref();
    stop(signal).then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
