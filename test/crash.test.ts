// Acknowledged means durable: the gateway runs as a child process, a QoS1 publisher
// streams uniquely numbered readings, and the gateway is kill -9'd after a random number
// of PUBACKs. After each restart every acknowledged reading must be there exactly once,
// and the seq column must still be gap-free. A final SIGTERM must exit 0 in time.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../config/site.js';
import { api, freePort, removeDir, tempDir, waitFor } from './helpers/gateway.js';

const ROUNDS = 3;

function startChild(configPath: string): ChildProcess {
  return spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/gateway/cli.js'), 'run', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '', OUTPOST_LOG_LEVEL: 'warn' },
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Publishes QoS1 readings numbered from `first` until `target` PUBACKs, then returns the acked numbers. */
function publishUntilAcked(port: number, first: number, target: number): Promise<{ acked: number[]; sent: number }> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, clientId: `crash-${first}` });
    const acked: number[] = [];
    let next = first;
    let inflight = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      client.end(true);
      resolve({ acked, sent: next - first });
    };
    const pump = () => {
      while (!done && inflight < 64 && next - first < target * 4) {
        const n = next++;
        inflight++;
        client.publish('devices/crash/z/counter/telemetry', JSON.stringify({ n }), { qos: 1 }, (err) => {
          inflight--;
          if (done) return;
          if (err) return finish(); // the gateway went away
          acked.push(n);
          if (acked.length >= target) return finish();
          pump();
        });
      }
    };
    client.once('connect', pump);
    client.once('error', (err) => (done ? undefined : reject(err)));
    setTimeout(finish, 20_000).unref();
  });
}

t.test('kill -9 loses no acknowledged reading and duplicates none', async (t) => {
  const dir = tempDir('outpost-crash-');
  t.teardown(() => removeDir(dir));
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const configPath = join(dir, 'site.yaml');
  writeFileSync(
    configPath,
    stringify({
      site: 'crash',
      dataDir: join(dir, 'data'),
      drivers: { mqtt: { host: '127.0.0.1', port: mqttPort } },
      http: { host: '127.0.0.1', port: httpPort },
    }),
  );
  const url = `http://127.0.0.1:${httpPort}`;
  const ready = () =>
    waitFor(async () => ((await api(url, '/health').catch(() => ({ status: 0 }))).status === 200 ? true : undefined), 'health', 15_000);
  let child: ChildProcess | null = null;
  t.teardown(() => void child?.kill('SIGKILL'));

  const allAcked: number[] = [];
  let nextNumber = 1;
  for (let round = 1; round <= ROUNDS; round++) {
    child = startChild(configPath);
    await ready();
    const target = 200 + Math.floor(Math.random() * 1500);
    const { acked, sent } = await publishUntilAcked(mqttPort, nextNumber, target);
    child.kill('SIGKILL');
    await exited(child);
    t.equal(acked.length, target, `round ${round}: ${target} PUBACKs before kill -9 (${sent} sent)`);
    allAcked.push(...acked);
    nextNumber += sent;
  }

  child = startChild(configPath);
  await ready();
  const token = (await import('node:fs')).readFileSync(join(dir, 'data', 'admin.token'), 'utf8').trim();
  const sql = async (q: string) =>
    (await api<{ rows: unknown[][]; error?: string }>(url, '/api/v1/query', token, { method: 'POST', body: { sql: q, maxRows: 50000 } }))
      .body;
  const counts = await sql(`SELECT value::BIGINT, count(*)::BIGINT FROM readings WHERE device = 'counter' GROUP BY 1`);
  const byNumber = new Map((counts.rows as [number, number][]).map(([n, c]) => [Number(n), Number(c)]));
  const missing = allAcked.filter((n) => !byNumber.has(n));
  const duplicated = [...byNumber].filter(([, c]) => c > 1).map(([n]) => n);
  t.same(missing, [], `all ${allAcked.length} acknowledged readings survived`);
  t.same(duplicated, [], 'no reading stored twice');
  const seq = await sql('SELECT min(seq)::BIGINT, max(seq)::BIGINT, count(*)::BIGINT FROM readings');
  const [min, max, count] = (seq.rows[0] as number[]).map(Number);
  t.same([min, max], [1, count], 'seq is gap-free from 1 across crashes');

  child.kill('SIGTERM');
  const started = Date.now();
  t.equal(await exited(child), 0, 'SIGTERM exits cleanly');
  t.ok(Date.now() - started < 10_000, 'within the shutdown deadline');
  child = null;
});
