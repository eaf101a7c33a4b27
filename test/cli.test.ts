// The installer's CLI, run as a real child process.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../config/site.js';
import { verifyPassword } from '../gateway/kernel/secrets.js';
import { connect, endClient, publish, removeDir, startGateway, tempDir } from './helpers/gateway.js';

const run = promisify(execFile);
const CLI = join(PACKAGE_ROOT, 'dist/gateway/cli.js');

async function outpost(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = run(process.execPath, [CLI, ...args], { env: { ...process.env, NODE_OPTIONS: '', OUTPOST_LOG_LEVEL: 'silent' } });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

t.test('--version and --help on every command', async (t) => {
  const v = await outpost(['--version']);
  t.equal(v.stdout.trim(), (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  const cmds = ['run', 'validate', 'init', 'status', 'query', 'hash-password', 'token', 'schema'];
  const helps = await Promise.all(cmds.map((cmd) => outpost([cmd, '--help'])));
  cmds.forEach((cmd, i) => {
    t.equal(helps[i].code, 0, `${cmd} --help`);
    t.match(helps[i].stdout, new RegExp(`Usage: outpost ${cmd}`));
  });
});

t.test('init writes a starter config that validates; validate reports errors with positions', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const file = join(dir, 'site.yaml');
  t.equal((await outpost(['init', file])).code, 0);
  const again = await outpost(['init', file]);
  t.equal(again.code, 1, 'refuses to overwrite');
  t.match(again.stderr, /already exists/);
  const ok = await outpost(['validate', file]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, /ok \(site my-site, 0 devices\)/);
  writeFileSync(file, 'site: s\nhttp:\n  prot: 1\n');
  const bad = await outpost(['validate', file]);
  t.equal(bad.code, 1);
  t.equal(bad.stderr.trim(), `${file}:3:3 http.prot: unknown key "prot" (did you mean "port"?)`);
});

t.test('hash-password output verifies; token create prints a matching hash', async (t) => {
  const h = await outpost(['hash-password'], 'correct horse\n');
  t.equal(h.code, 0);
  t.ok(await verifyPassword('correct horse', h.stdout.trim()));
  t.notOk(await verifyPassword('wrong horse', h.stdout.trim()));
  const tok = await outpost(['token', 'create', '--name', 'dash', '--role', 'viewer']);
  const token = /token \(shown once\): (\S+)/.exec(tok.stdout)?.[1];
  const hash = /sha256: ([0-9a-f]{64})/.exec(tok.stdout)?.[1];
  const { sha256Hex } = await import('../gateway/kernel/secrets.js');
  t.equal(sha256Hex(token ?? ''), hash);
  t.match(tok.stdout, /role: viewer/);
});

t.test('query and status go through the running daemon; query refuses writes', async (t) => {
  const g = await startGateway();
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const configFile = join(g.dir, 'site.yaml');
  writeFileSync(
    configFile,
    stringify({ site: 'test', dataDir: g.dir, http: { host: '127.0.0.1', port: Number(new URL(g.httpUrl).port) } }),
  );
  const c = await connect(g.mqttPort);
  await publish(c, 'devices/test/z/cli-dev/telemetry', JSON.stringify({ t: 42.5 }));
  await endClient(c);
  const q = await outpost([
    'query',
    '--config',
    configFile,
    '--format',
    'json',
    "SELECT device, point, value FROM readings WHERE device = 'cli-dev'",
  ]);
  t.equal(q.code, 0, q.stderr);
  t.same(JSON.parse(q.stdout), [{ device: 'cli-dev', point: 't', value: 42.5 }]);
  const w = await outpost(['query', '--config', configFile, 'DELETE FROM readings']);
  t.equal(w.code, 1);
  t.match(w.stderr, /read-only \(SELECT or EXPLAIN\), this is a DELETE statement/);
  const s = await outpost(['status', '--config', configFile]);
  t.equal(s.code, 0, s.stderr);
  t.match(s.stdout, /site test .* ready/);
  t.match(s.stdout, /driver mqtt: running/);
});

t.test('query opens the file read-only when no daemon runs', async (t) => {
  const g = await startGateway();
  const c = await connect(g.mqttPort);
  await publish(c, 'devices/test/z/offline-dev/telemetry', JSON.stringify({ t: 7 }));
  await endClient(c);
  await g.stop();
  t.teardown(() => removeDir(g.dir));
  const configFile = join(g.dir, 'site.yaml');
  writeFileSync(configFile, stringify({ site: 'test', dataDir: g.dir, http: { host: '127.0.0.1', port: 1 } }));
  const q = await outpost([
    'query',
    '--config',
    configFile,
    '--format',
    'csv',
    "SELECT point, value FROM readings WHERE device = 'offline-dev'",
  ]);
  t.equal(q.code, 0, q.stderr);
  t.equal(q.stdout.trim(), 'point,value\nt,7');
  const status = await outpost(['status', '--config', configFile]);
  t.equal(status.code, 1);
  t.match(status.stderr, /no gateway answering at http:\/\/127\.0\.0\.1:1/);
});
