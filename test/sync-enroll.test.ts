// `outpost enroll` as an installer runs it: a one-time token becomes credentials on disk
// (0600) that the gateway then signs with; a used token is refused with a clear message.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { startCloud } from './helpers/cloud.js';
import { removeDir, tempDir } from './helpers/gateway.js';
import { outpost } from './helpers/cli.js';

t.test('outpost enroll writes 0600 credentials once; a used token is refused', async (t) => {
  const cloud = await startCloud();
  const dir = tempDir();
  t.teardown(async () => {
    await cloud.stop();
    removeDir(dir);
    removeDir(cloud.dir);
  });
  const site = join(dir, 'site.yaml');
  writeFileSync(site, stringify({ site: 'plant-7', dataDir: join(dir, 'data') }));
  const token = await cloud.mintEnrollmentToken('plant-7', 'plant-7-gw1');
  const ok = await outpost(['enroll', '--config', site, '--cloud', cloud.url, '--token', token, '--gateway-id', 'plant-7-gw1']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(
    ok.stdout,
    /^enrolled as plant-7-gw1 \(site plant-7\) at http:\/\/127\.0\.0\.1:\d+; credentials written to .*cloud-credentials\.json \(0600\); set sync\.enabled: true/,
  );
  const file = join(dir, 'data', 'cloud-credentials.json');
  t.equal(statSync(file).mode & 0o777, 0o600);
  const creds = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  t.match(creds, { cloud: cloud.url, gatewayId: 'plant-7-gw1', site: 'plant-7' });
  t.match(creds.secret, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');

  const again = await outpost(['enroll', '--config', site, '--cloud', cloud.url, '--token', token, '--gateway-id', 'plant-7-gw1']);
  t.equal(again.code, 1);
  t.match(again.stderr, /^outpost: enrollment at http:\/\/127\.0\.0\.1:\d+ refused \(HTTP 401\): /);
  t.same(JSON.parse(readFileSync(file, 'utf8')), creds, 'a failed enrollment leaves the credentials alone');
});
