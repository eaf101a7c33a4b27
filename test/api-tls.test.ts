// HTTPS on the local API: a self-signed certificate generated once in the data dir and
// checked by curl (by CA file and by public-key pin), the installer's own certificate,
// the HTTP→HTTPS redirect, and the CLI reaching the gateway with the pinned certificate.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { stringify } from 'yaml';
import { resolveApiTls, tlsEnabled } from '../gateway/api/tls.js';
import { parseConfig } from '../config/site.js';
import { selfSignedCertificate } from '../gateway/kernel/x509.js';
import { outpost } from './helpers/cli.js';
import { freePort, removeDir, startGateway, tempDir } from './helpers/gateway.js';

const run = promisify(execFile);

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('curl', ['-sS', '--max-time', '5', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

t.test('a self-signed certificate is generated once and curl verifies it by file and by pin', async (t) => {
  const dir = tempDir();
  const redirectPort = await freePort();
  let g = await startGateway({ http: { tls: { mode: 'on', redirectPort } } }, dir);
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const certFile = join(dir, 'tls', 'api-cert.pem');
  const keyFile = join(dir, 'tls', 'api-key.pem');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key is 0600');
  const cert = new X509Certificate(readFileSync(certFile));
  t.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);
  t.match(cert.subjectAltName, /DNS:localhost/);
  const url = g.gw.api.url;
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);

  const byFile = await curl(['--cacert', certFile, `${url}/health`]);
  t.equal(byFile.code, 0, byFile.stderr);
  t.same(JSON.parse(byFile.stdout), { status: 'ok', site: 'test' }, 'curl --cacert verifies the generated certificate');
  const status = (await curl(['--cacert', certFile, '-H', `Authorization: Bearer ${g.adminToken}`, `${url}/api/v1/status`])).stdout;
  const tls = (JSON.parse(status) as { api: { tls: { fingerprint256: string; pin: string; source: string } } }).api.tls;
  t.equal(tls.fingerprint256, cert.fingerprint256, 'status shows the fingerprint');
  t.equal(tls.source, 'generated');
  const pinned = await curl(['-k', '--pinnedpubkey', tls.pin, `${url}/health`]);
  t.equal(pinned.code, 0, `curl --pinnedpubkey ${tls.pin}: ${pinned.stderr}`);
  const otherPin = await curl(['-k', '--pinnedpubkey', 'sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', `${url}/health`]);
  t.equal(otherPin.code, 90, 'a wrong pin is refused by curl');
  const unverified = await curl([`${url}/health`]);
  t.not(unverified.code, 0, 'without the certificate curl refuses the self-signed one');
  const plain = await curl([`http://127.0.0.1:${g.gw.api.port}/health`]);
  t.not(plain.stdout.includes('"status"'), true, 'no plain HTTP answer on the HTTPS port');
  const redirect = await curl([
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{redirect_url}',
    `http://127.0.0.1:${redirectPort}/api/v1/status?x=1`,
  ]);
  t.equal(redirect.stdout, `308 https://127.0.0.1:${g.gw.api.port}/api/v1/status?x=1`, 'the redirect port sends HTTP to HTTPS');

  const cli = await outpost(['status', '--url', url, '--config', await siteFile(dir, g.gw.api.port)]);
  t.equal(cli.code, 0, cli.stderr);
  t.match(cli.stdout, new RegExp(`SHA-256 fingerprint ${cert.fingerprint256}`), 'outpost status prints the fingerprint');
  t.ok(cli.stdout.includes(`public-key pin ${tls.pin}`), 'and the pin');

  await g.stop();
  g = await startGateway({ http: { tls: { mode: 'on' } } }, dir);
  t.equal(new X509Certificate(readFileSync(certFile)).fingerprint256, cert.fingerprint256, 'a restart keeps the same certificate');
});

/** A site file the CLI can read: same dataDir (for the token and the certificate). */
async function siteFile(dir: string, port: number): Promise<string> {
  const file = join(dir, 'cli-site.yaml');
  writeFileSync(file, stringify({ site: 'test', dataDir: dir, http: { host: '127.0.0.1', port, tls: { mode: 'on' } } }));
  return file;
}

t.test('the CLI refuses a gateway whose certificate is not the one on this box', async (t) => {
  const dir = tempDir();
  const g = await startGateway({ http: { tls: { mode: 'on' } } }, dir);
  const other = tempDir();
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
    removeDir(other);
  });
  // Another box's data dir: a different generated certificate, the same token.
  const s = selfSignedCertificate('impostor', ['127.0.0.1']);
  const { mkdirSync, copyFileSync } = await import('node:fs');
  mkdirSync(join(other, 'tls'));
  writeFileSync(join(other, 'tls', 'api-cert.pem'), s.certPem);
  copyFileSync(join(dir, 'admin.token'), join(other, 'admin.token'));
  const file = join(other, 'site.yaml');
  writeFileSync(file, stringify({ site: 'test', dataDir: other, http: { host: '127.0.0.1', port: g.gw.api.port, tls: { mode: 'on' } } }));
  const r = await outpost(['status', '--config', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, /presents a certificate that is not the one on this box .*the token was not sent/);
});

t.test("the installer's own certificate and key are served", async (t) => {
  const dir = tempDir();
  const s = selfSignedCertificate('gw.example.test', ['gw.example.test', '127.0.0.1']);
  writeFileSync(join(dir, 'my-cert.pem'), s.certPem);
  writeFileSync(join(dir, 'my-key.pem'), s.keyPem, { mode: 0o600 });
  const g = await startGateway({ http: { tls: { cert: join(dir, 'my-cert.pem'), key: join(dir, 'my-key.pem') } } }, dir);
  t.teardown(async () => {
    await g.stop();
    removeDir(dir);
  });
  const r = await curl(['--cacert', join(dir, 'my-cert.pem'), `${g.gw.api.url}/health`]);
  t.equal(r.code, 0, r.stderr);
  t.equal(g.gw.api.tls?.fingerprint256, s.cert.fingerprint256);
  t.equal(g.gw.api.tls?.source, 'configured');
});

t.test('tls.mode auto: HTTPS off loopback, plain on loopback; plain off loopback is warned about', async (t) => {
  const cfg = (http: Record<string, unknown>) => parseConfig(stringify({ site: 's', http }), 'x.yaml').http;
  t.equal(tlsEnabled(cfg({ host: '127.0.0.1' })), false);
  t.equal(tlsEnabled(cfg({ host: '0.0.0.0' })), true, 'the default host 0.0.0.0 gets HTTPS');
  t.equal(tlsEnabled(cfg({ host: '0.0.0.0', tls: { mode: 'off' } })), false);
  t.equal(tlsEnabled(cfg({ host: '::1', tls: { mode: 'on' } })), true);
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => undefined } as unknown as Parameters<
    typeof resolveApiTls
  >[2];
  t.equal(resolveApiTls(cfg({ host: '0.0.0.0', tls: { mode: 'off' } }), dir, log), null);
  t.match(warnings, [/plain HTTP off loopback: API tokens cross the network in clear/]);
  const generated = resolveApiTls(cfg({ host: '0.0.0.0' }), dir, log);
  t.equal(generated?.source, 'generated', 'off loopback with no certificate: one is generated');
  t.equal(resolveApiTls(cfg({ host: '127.0.0.1' }), dir, log), null, 'loopback stays plain HTTP');
  t.throws(() => parseConfig(stringify({ site: 's', http: { tls: { mode: 'sometimes' } } }), 'x.yaml'), /http\.tls\.mode/);
});
