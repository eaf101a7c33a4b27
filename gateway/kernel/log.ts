// pino logger: JSON lines by default, human-readable when stdout is a terminal.
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Log fields that are never written out, at the top level or one object down. */
const SECRET_KEYS = ['password', 'secret', 'token', 'authorization', 'apiKey', 'appKey', 'nwkSKey', 'appSKey', 'privateKey'];
const REDACTED = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `headers.${k}`, `*.headers.${k}`]);

export function createLogger(level: string, opts: { pretty?: boolean; name?: string; stream?: DestinationStream } = {}): Logger {
  const envLevel = process.env.OUTPOST_LOG_LEVEL ?? process.env.LOG_LEVEL;
  const pretty = !opts.stream && (opts.pretty ?? (process.stdout.isTTY === true && process.env.OUTPOST_LOG_FORMAT !== 'json'));
  const options: LoggerOptions = {
    name: opts.name ?? 'outpost',
    level: envLevel ?? level,
    // A second line of defence: a secret that reaches a log call by mistake is masked.
    redact: { paths: REDACTED, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  };
  return opts.stream ? pino(options, opts.stream) : pino(options);
}

/** Logs at most once per key per interval; returns how many were suppressed since the last log. */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly intervalMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  shouldLog(key: string, now = Date.now()): { log: boolean; suppressed: number } {
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return { log: false, suppressed: 0 };
    }
    if (!entry && this.last.size >= this.maxKeys) this.last.clear(); // bounded memory
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    return { log: true, suppressed };
  }
}
