// Secrets hygiene: a world-readable secret file stops the gateway from starting (naming
// the file and the fix); after a run that used every kind of credential, none of them
// appears in the logs, /metrics, the status (API and CLI) or error answers.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../config/site.js';
import { Gateway } from '../gateway/gateway.js';
import { createLogger } from '../gateway/kernel/log.js';
import { hashPassword, newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { selfSignedCertificate } from '../gateway/kernel/x509.js';
import { outpost } from './helpers/cli.js';
import { startCloud } from './helpers/cloud.js';
import { connect, endClient, freePort, publish, removeDir, startGateway, tempDir, waitFor } from './helpers/gateway.js';
import { MODELS_DIR } from './helpers/shared.js';
import { FAST_SYNC } from './helpers/sync.js';

const quiet = () => createLogger('silent', { pretty: false });
const site = (dir: string, extra: Record<string, unknown> = {}) =>
  parseConfig(
    stringify({
      site: 's',
      dataDir: dir,
      http: { host: '127.0.0.1', port: 0 },
      drivers: { mqtt: { host: '127.0.0.1', port: 0 } },
      ...extra,
    }),
    'x.yaml',
  );

t.test('a world-readable secret file is refused at start, naming the file and the fix', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const cases: [string, string, Record<string, unknown>][] = [
    ['admin.token', 'the generated admin API token', {}],
    ['cloud-credentials.json', 'the cloud credentials', {}],
    [join('tls', 'api-key.pem'), 'the local API TLS key', { http: { host: '127.0.0.1', port: 0, tls: { mode: 'on' } } }],
  ];
  for (const [file, what, extra] of cases) {
    const g = await Gateway.start({ config: site(dir, extra), log: quiet() });
    await g.stop();
    const path = join(dir, file);
    if (file === 'cloud-credentials.json') writeFileSync(path, '{}', { mode: 0o600 });
    chmodSync(path, 0o644);
    await t.rejects(
      Gateway.start({ config: site(dir, extra), log: quiet() }),
      {
        name: 'SecretFileError',
        message: new RegExp(
          `${path.replace(/[.]/g, '\\.')} \\(${what}\\) has mode 0644, so every user of this box can read it: run \`chmod 600 ${path.replace(/[.]/g, '\\.')}\``,
        ),
      },
      `${file} 0644 is refused`,
    );
    chmodSync(path, 0o640);
    const lines: string[] = [];
    const { pino } = await import('pino');
    const g2 = await Gateway.start({ config: site(dir, extra), log: pino({}, { write: (s: string) => void lines.push(s) }) });
    await g2.stop();
    t.ok(
      lines.some((l) => l.includes(`${path} (${what}) has mode 0640: its group can read it`)),
      `${file} 0640 starts with a warning`,
    );
    chmodSync(path, 0o600);
    if (file === 'cloud-credentials.json') removeDir(path);
  }
});

t.test('a configured TLS key and a site file with inline passwords are checked too', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const s = selfSignedCertificate('x', ['127.0.0.1']);
  writeFileSync(join(dir, 'mqtt-cert.pem'), s.certPem);
  writeFileSync(join(dir, 'mqtt-key.pem'), s.keyPem, { mode: 0o604 });
  const mqtt = {
    drivers: { mqtt: { host: '127.0.0.1', port: 0, tls: { port: 0, cert: join(dir, 'mqtt-cert.pem'), key: join(dir, 'mqtt-key.pem') } } },
  };
  await t.rejects(Gateway.start({ config: site(dir, mqtt), log: quiet() }), {
    message: /mqtt-key\.pem \(the MQTT TLS key\) has mode 0604/,
  });

  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    stringify({
      site: 's',
      dataDir: join(dir, 'data'),
      http: { host: '127.0.0.1', port: 0 },
      drivers: { mqtt: { host: '127.0.0.1', port: 0 } },
      devices: [{ id: 'cam', zone: 'z', camera: { rtsp: 'rtsp://viewer:Cam-Pa55@127.0.0.1:1/stream' } }],
    }),
    { mode: 0o644 },
  );
  chmodSync(file, 0o644);
  const r = await outpost(['run', '--config', file], { OUTPOST_LOG_FORMAT: 'json' });
  t.equal(r.code, 1, 'outpost run refuses to start');
  t.match(r.stdout + r.stderr, /site\.yaml \(the site config, which holds secrets inline \(devices\[0\]\.camera\.rtsp\)\) has mode 0644/);
  t.notMatch(r.stdout + r.stderr, /Cam-Pa55/, 'and does not print the password while saying so');
});

t.test('no secret shows up in logs, /metrics, status or error answers after a run that used them all', async (t) => {
  const cloud = await startCloud();
  const dir = tempDir();
  const lines: string[] = [];
  const adminToken = newApiToken();
  const viewerToken = newApiToken();
  const mqttPassword = 'Mqtt-Pa55-7c1e';
  const wrongPassword = 'Wrong-Pa55-91aa';
  const cameraPassword = 'Cam-Pa55-3d9f';
  const closed = await freePort();
  const siteFile = join(dir, 'site.yaml');
  const siteObject = { site: 'test', dataDir: dir };
  writeFileSync(siteFile, stringify(siteObject), { mode: 0o600 });
  const enrollment = await cloud.mintEnrollmentToken('test', 'gw-secrets');
  const enrolled = await outpost([
    'enroll',
    '--config',
    siteFile,
    '--cloud',
    cloud.url,
    '--token',
    enrollment,
    '--gateway-id',
    'gw-secrets',
  ]);
  t.equal(enrolled.code, 0, enrolled.stderr);
  const g = await startGateway(
    {
      http: {
        tls: { mode: 'on' },
        tokens: [
          { name: 'admin', role: 'admin', sha256: sha256Hex(adminToken) },
          { name: 'viewer', role: 'viewer', sha256: sha256Hex(viewerToken) },
        ],
      },
      sync: FAST_SYNC,
      drivers: { camera: { enabled: true, model: { file: join(MODELS_DIR, 'yolox_nano.onnx') }, workers: 1 } },
      devices: [
        { id: 'meter-1', zone: 'plant', mqtt: { username: 'meter-1', passwordHash: await hashPassword(mqttPassword) } },
        { id: 'cam-1', zone: 'gate', camera: { rtsp: `rtsp://viewer:${cameraPassword}@127.0.0.1:${closed}/stream` } },
      ],
      log: { level: 'debug' },
    },
    dir,
    { logLines: lines },
  );
  t.teardown(async () => {
    await g.stop();
    await cloud.stop();
    removeDir(dir);
    removeDir(cloud.dir);
  });
  const url = g.gw.api.url;
  const certFile = join(dir, 'tls', 'api-cert.pem');
  const https = async (path: string, token?: string, body?: unknown) => {
    const { Agent, request } = await import('undici');
    const dispatcher = new Agent({ connect: { ca: readFileSync(certFile, 'utf8') } });
    try {
      const res = await request(url + path, {
        dispatcher,
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return await res.body.text();
    } finally {
      await dispatcher.close();
    }
  };

  const device = await connect(g.mqttPort, { username: 'meter-1', password: mqttPassword });
  await publish(device, 'devices/test/plant/meter-1/telemetry', JSON.stringify({ kwh: 12.5 }));
  await endClient(device);
  await connect(g.mqttPort, { username: 'meter-1', password: wrongPassword }).then(endClient, () => undefined);
  const answers = [
    await https('/api/v1/status', 'opt_' + 'x'.repeat(43)),
    await https('/api/v1/status', `${viewerToken}x`),
    await https('/api/v1/query', viewerToken, { sql: 'SELECT 1' }),
    await https('/api/v1/query', adminToken, { sql: "SELECT * FROM read_text('/etc/hostname')" }),
    await https('/api/v1/status', adminToken),
    await https('/api/v1/sync', adminToken),
    await https('/api/v1/cameras', adminToken),
    await https('/metrics'),
  ];
  await waitFor(async () => (lines.some((l) => l.includes('camera')) ? true : undefined), 'the camera to be tried', 20_000);
  await waitFor(
    async () => {
      const s = JSON.parse(await https('/api/v1/sync', adminToken)) as { lastSuccessAt?: string | null };
      return s.lastSuccessAt ? true : undefined;
    },
    'a successful upload',
    20_000,
  );
  const cliConfig = join(dir, 'cli.yaml');
  writeFileSync(
    cliConfig,
    stringify({ site: 'test', dataDir: dir, http: { host: '127.0.0.1', port: g.gw.api.port, tls: { mode: 'on' } } }),
    { mode: 0o600 },
  );
  const cliStatus = await outpost(['status', '--config', cliConfig, '--token', adminToken, '--json']);
  t.equal(cliStatus.code, 0, cliStatus.stderr);
  const cliSync = await outpost(['sync', 'status', '--config', cliConfig, '--token', adminToken]);
  t.equal(cliSync.code, 0, cliSync.stderr);
  const badCli = await outpost(['status', '--config', cliConfig, '--token', `${adminToken}-typo`]);
  t.equal(badCli.code, 1);

  const creds = JSON.parse(readFileSync(join(dir, 'cloud-credentials.json'), 'utf8')) as { secret: string };
  const keyLines = readFileSync(join(dir, 'tls', 'api-key.pem'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'));
  const secrets: Record<string, string> = {
    'admin API token': adminToken,
    'viewer API token': viewerToken,
    'MQTT password': mqttPassword,
    'a wrong MQTT password': wrongPassword,
    'camera password': cameraPassword,
    'cloud secret': creds.secret,
    'enrollment token': enrollment,
    'TLS private key': keyLines[1],
  };
  const surfaces: Record<string, string> = {
    logs: lines.join('\n'),
    'API answers (status, sync, cameras, /metrics, errors)': answers.join('\n'),
    'outpost status --json': cliStatus.stdout + cliStatus.stderr,
    'outpost sync status': cliSync.stdout + cliSync.stderr,
    'outpost status with a bad token': badCli.stdout + badCli.stderr,
    'outpost enroll': enrolled.stdout + enrolled.stderr,
  };
  t.ok(lines.length > 20, `the run logged (${lines.length} lines)`);
  t.match(surfaces.logs, /viewer:\*\*\*@127\.0\.0\.1/, 'the camera URL is logged with its password masked');
  for (const [surface, text] of Object.entries(surfaces)) {
    for (const [what, secret] of Object.entries(secrets)) t.notOk(text.includes(secret), `${what} is not in ${surface}`);
  }
});
