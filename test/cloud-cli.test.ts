// `outpost cloud` and `outpost cloud-token` as real child processes: config errors, token
// minting against a running cloud, commits surviving kill -9, clean stop on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { sha256Hex } from '../gateway/kernel/secrets.js';
import type { CloudReading } from '../sync/cloud/store.js';
import { ingest, office, readAdminToken, waitForCloud, writeCloudConfig, type GatewayCreds } from './helpers/cloud.js';
import { removeDir, tempDir } from './helpers/gateway.js';
import { CLI, outpost as runCli } from './helpers/cli.js';

const outpost = (args: string[]) => runCli(args, { OUTPOST_LOG_LEVEL: 'silent' });

const env = { ...process.env, NODE_OPTIONS: '', OUTPOST_LOG_LEVEL: 'silent' };

function startChild(file: string): ChildProcess {
  return spawn(process.execPath, [CLI, 'cloud', '--config', file], { env, stdio: 'ignore' });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

t.test('help, config errors and offline tokens', async (t) => {
  const dir = tempDir('outpost-cloud-cli-');
  t.teardown(() => removeDir(dir));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, `dataDir: ${dir}\nlimits:\n  maxBatchRowz: 5\n`);
  const { file } = await writeCloudConfig(dir);
  // Independent child processes: run them at once.
  const [help, helpToken, r, off, ok] = await Promise.all([
    outpost(['cloud', '--help']),
    outpost(['cloud-token', '--help']),
    outpost(['cloud', '--config', bad]),
    outpost(['cloud-token', '--config', join(dir, 'none.yaml'), '--site', 's1', '--offline']),
    outpost(['cloud-token', '--config', file, '--site', 's1', '--gateway', 'gw-9', '--ttl', '2h', '--offline']),
  ]);
  t.match(help.stdout, /Usage: outpost cloud /);
  t.match(helpToken.stdout, /Usage: outpost cloud-token /);
  t.equal(r.code, 1);
  t.equal(r.stderr.trim(), `${bad}:3:3 limits.maxBatchRowz: unknown key "maxBatchRowz" (did you mean "maxBatchRows"?)`);
  t.equal(off.code, 1, 'the config must load even offline');
  t.match(off.stderr, /none.yaml:0:0 file not found/);
  t.equal(ok.code, 0);
  const token = /usable once\): (oet_\S+)/.exec(ok.stdout)?.[1] ?? '';
  t.match(ok.stdout, `  - sha256: ${sha256Hex(token)}\n    site: s1\n    gatewayId: gw-9\n    expiresAt: "`);
});

t.test('a child cloud: minted token enrolls, commits survive kill -9, SIGTERM stops cleanly', async (t) => {
  const dir = tempDir('outpost-cloud-cli-');
  t.teardown(() => removeDir(dir));
  const { file, url } = await writeCloudConfig(dir);
  let child = startChild(file);
  t.teardown(() => void child.kill('SIGKILL'));
  await waitForCloud(url);

  const minted = await outpost(['cloud-token', '--config', file, '--site', 'test', '--gateway', 'gw-k']);
  t.equal(minted.code, 0, minted.stderr);
  const token = /: (oet_\S+)$/m.exec(minted.stdout)?.[1];
  t.ok(token, 'printed a token');
  const res = await fetch(`${url}/api/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, gatewayId: 'gw-k', site: 'test' }),
  });
  t.equal(res.status, 200);
  const gw = (await res.json()) as GatewayCreds;
  const rows = [1, 2, 3].map((seq) => ({ seq, ts: 1_714_521_600_000 + seq, device: 'd', point: 'p', value: seq * 2 }));
  t.same((await ingest(url, gw, 'telemetry', rows)).body, { stream: 'telemetry', ackedSeq: 3, inserted: 3, duplicate: false });

  child.kill('SIGKILL');
  await exited(child);
  child = startChild(file);
  await waitForCloud(url);
  t.same(
    (await ingest(url, gw, 'telemetry', rows)).body,
    { stream: 'telemetry', ackedSeq: 3, inserted: 0, duplicate: true },
    'the acked batch was committed',
  );
  const q = await office<{ readings: CloudReading[] }>(url, readAdminToken(dir), '/api/v1/readings?gateway=gw-k');
  t.same(
    q.body.readings.map((r) => r.value),
    [2, 4, 6],
  );

  const stopped = exited(child);
  child.kill('SIGTERM');
  t.same(await stopped, { code: 0, signal: null }, 'exit code 0 after SIGTERM');
});
