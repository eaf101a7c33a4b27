// The HTTP bench's clients, as a child process: `clients` keep-alive connections, each
// its own device (bearer token), posting `batch`-reading JSON arrays one after the other
// for `seconds`; answers `done {readingsPerSec, requests, p50Ms, p99Ms}` on stdout.
import { Pool } from 'undici';
import { runChild, say } from './child-main.js';
import { round, summarize } from './stats.js';

export interface HttpLoadArgs {
  url: string;
  tokens: string[];
  seconds: number;
  clients: number;
  batch: number;
}
export interface HttpLoadResult {
  requests: number;
  readingsPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  failures: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as HttpLoadArgs;

async function run(): Promise<void> {
  const pool = new Pool(args.url, { connections: args.clients });
  const t0 = Date.now();
  const body = JSON.stringify(Array.from({ length: args.batch }, (_, i) => ({ power: 1000 + i, ts: t0 - args.batch + i })));
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const client = async (i: number) => {
    const headers = { authorization: `Bearer ${args.tokens[i]}`, 'content-type': 'application/json' };
    while (performance.now() < started + args.seconds * 1000) {
      const t = performance.now();
      const res = await pool.request({ path: `/ingest/v1/dev-${i}`, method: 'POST', headers, body });
      await res.body.text();
      if (res.statusCode === 200) latencies.push(performance.now() - t);
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: args.clients }, (_, i) => client(i)));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  const s = summarize(latencies, 2);
  const result: HttpLoadResult = {
    requests: latencies.length,
    readingsPerSec: round((latencies.length * args.batch) / seconds, 0)!,
    p50Ms: s.p50,
    p99Ms: s.p99,
    failures,
  };
  say('done', result);
}

runChild(
  async () => {
    say('ready');
  },
  { run: () => void run() },
);
