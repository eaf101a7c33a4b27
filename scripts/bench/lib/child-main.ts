// The child's side of lib/procs.ts: protocol lines on stdout (logs go to stderr), commands from
// the bench on stdin, and an exit on SIGTERM/SIGINT or when stdin closes (the bench is gone,
// however it went), so a child never outlives its bench.
import { createInterface } from 'node:readline';

/** One protocol line: `<tag>` or `<tag> <value>` (a string as is, anything else as JSON). */
export function say(tag: string, value?: unknown): void {
  process.stdout.write(value === undefined ? `${tag}\n` : `${tag} ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
}

type Main = () => Promise<{ close?: () => Promise<unknown>; done?: boolean } | void>;

// Runs a child's `main`: its `close` runs on shutdown (cut short after `graceMs`), `done` exits at
// once (a run-once child); a stdin line `<word> <rest>` calls `commands[word](rest)`. A failure
// prints `error <first line>` on stdout, the stack on stderr, and exits 1.
export function runChild(main: Main, commands: Record<string, (rest: string) => void> = {}, graceMs = 2_000): void {
  let [close, stopping] = [undefined as (() => Promise<unknown>) | undefined, false];
  const fail = (err: Error) => {
    say(`error ${(err.message ?? String(err)).split('\n')[0]}`);
    process.stderr.write(`${err.stack ?? String(err)}\n`);
    process.exit(1);
  };
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), graceMs).unref();
    (close?.() ?? Promise.resolve()).then(() => process.exit(0), fail);
  };
  process.once('SIGTERM', shutdown).once('SIGINT', shutdown);
  const input = createInterface({ input: process.stdin });
  input.on('line', (line) => {
    const [word, ...rest] = line.trim().split(' ');
    commands[word]?.(rest.join(' '));
  });
  input.once('close', shutdown);
  main().then((r) => {
    close = r?.close;
    if (r?.done) process.exit(0);
  }, fail);
}
