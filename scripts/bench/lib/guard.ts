// Cleanup guard of a bench: if it is interrupted (SIGINT/SIGTERM) or exits early, kill its
// peer child and remove its temp dirs.
import { rmSync } from 'node:fs';

/** Kills the peer and removes temp dirs if the bench is interrupted or exits early. Returns the unguard. */
export function guard(peer: { killNow(): void } | null, dirs: Set<string>): () => void {
  const cleanup = () => {
    peer?.killNow();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', cleanup);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('exit', cleanup);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
