// Config loading: defaults, and errors that name file, line, column and path.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { schemaJson } from '../config/schema.js';
import { ConfigError, DEFAULT_CONFIG_PATH, PACKAGE_ROOT, loadConfigFile, parseConfig } from '../config/site.js';

function problems(text: string): string[] {
  try {
    parseConfig(text, 'site.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

t.test('the bundled default config is valid and matches the promised defaults', async (t) => {
  const c = loadConfigFile(DEFAULT_CONFIG_PATH);
  t.equal(c.drivers.mqtt.port, 1883);
  t.equal(c.http.port, 8080);
  t.equal(c.dataDir, './data');
  t.equal(c.sync.enabled, false);
  t.equal(c.drivers.mqtt.anonymous, 'loopback');
  t.equal(c.drivers.simulator.enabled, true);
  t.ok(c.store.flushIntervalMs <= 50, 'group commit waits at most 50 ms');
});

t.test('the starter config written by `outpost init` is valid', async (t) => {
  const c = loadConfigFile(join(PACKAGE_ROOT, 'config', 'starter.yaml'));
  t.equal(c.site, 'my-site');
});

t.test('config/site.schema.json is the schema generated from config/schema.ts', async (t) => {
  t.equal(
    readFileSync(join(PACKAGE_ROOT, 'config', 'site.schema.json'), 'utf8'),
    schemaJson(),
    'run `outpost schema > config/site.schema.json`',
  );
});

t.test('a wrong type is reported with line, column and path', async (t) => {
  const text = [
    'site: s1', // 1
    'devices:', // 2
    '  - id: a', // 3
    '    zone: z', // 4
    '  - id: b', // 5
    '    zone: z', // 6
    '  - id: c', // 7
    '    zone: z', // 8
    '  - id: d', // 9
    '    zone: z', // 10
    '    mqtt:', // 11
    '      username: 42', // 12
    '      passwordHash: "scrypt$x"', // 13
  ].join('\n');
  t.same(problems(text), ['site.yaml:12:17 devices[3].mqtt.username: must be a string']);
});

t.test('unknown keys are errors, with a suggestion for typos', async (t) => {
  t.same(problems('site: s1\ndrivers:\n  mqtt:\n    prot: 1884\n'), [
    'site.yaml:4:5 drivers.mqtt.prot: unknown key "prot" (did you mean "port"?)',
  ]);
  t.same(problems('site: s1\ncolour: red\n'), ['site.yaml:2:1 colour: unknown key "colour"']);
});

t.test('missing required keys, bad enums and ranges', async (t) => {
  t.same(problems('dataDir: /tmp\n'), ['site.yaml:1:1 missing required key "site"']);
  t.same(problems('site: s1\ndrivers:\n  mqtt:\n    anonymous: sometimes\n'), [
    'site.yaml:4:16 drivers.mqtt.anonymous: must be one of: loopback, never, always',
  ]);
  t.same(problems('site: s1\nstore:\n  flushIntervalMs: 500\n'), ['site.yaml:3:20 store.flushIntervalMs: must be <= 50']);
});

t.test('several problems are all reported, in file order', async (t) => {
  const out = problems('site: s1\nhttp:\n  port: "x"\n  tokens:\n    - name: a\n      role: root\n      sha256: abc\n');
  t.equal(out.length, 3);
  t.match(out[0], /^site\.yaml:3:9 http\.port: must be an integer/);
  t.match(out[1], /^site\.yaml:6:13 http\.tokens\[0\]\.role: must be one of: admin, operator, viewer/);
  t.match(out[2], /^site\.yaml:7:15 http\.tokens\[0\]\.sha256: is not valid here/);
});

t.test('duplicate device ids and usernames are caught', async (t) => {
  const text = 'site: s1\ndevices:\n  - id: a\n    zone: z\n  - id: a\n    zone: y\n';
  t.same(problems(text), ['site.yaml:5:9 devices[1].id: device id "a" is already used by devices[0]']);
});

t.test('a message limit larger than the store queue is refused', async (t) => {
  t.same(problems('site: s1\nstore:\n  maxQueueRows: 100\ndrivers:\n  mqtt:\n    maxReadingsPerMessage: 500\n'), [
    'site.yaml:6:28 drivers.mqtt.maxReadingsPerMessage: must not exceed store.maxQueueRows (100), or such a message could never be stored',
  ]);
});

t.test('locks must point at a device that can drive them', async (t) => {
  const text = [
    'site: s1', // 1
    'devices:', // 2
    '  - id: plain', // 3
    '    zone: z', // 4
    'locks:', // 5
    '  - id: door-a', // 6
    '    group: lobby', // 7
    '    device: ghost', // 8
    '  - id: door-b', // 9
    '    group: lobby', // 10
    '    device: plain', // 11
    '  - id: door-c', // 12
    '    group: lobby', // 13
    '    device: plain', // 14
    '    modbusPoint: relay', // 15
  ].join('\n');
  t.same(problems(text), [
    'site.yaml:8:13 locks[0].device: unknown device "ghost"',
    'site.yaml:11:13 locks[1].device: device "plain" has no MQTT credentials: give it mqtt, or set modbusPoint',
    'site.yaml:15:18 locks[2].modbusPoint: "relay" must be a writable coil point of device "plain"',
  ]);
});

t.test('rules must name things that exist', async (t) => {
  const text = [
    'site: s1', // 1
    'timezone: Mars/Olympus', // 2
    'rules:', // 3
    '  - id: r1', // 4
    '    when: { reading: { device: "*" } }', // 5
    '    then:', // 6
    '      - write: { device: ghost, point: p, value: 1 }', // 7
    '      - lock: { locks: [nope], action: lock }', // 8
    '      - lock: { group: lobby, action: lock }', // 9
    '  - id: r1', // 10
    '    when: { event: { type: "x" } }', // 11
    '    if: { time: { between: ["25:00", "06:00"] } }', // 12
    '    then: [{ event: { type: x.y } }]', // 13
  ].join('\n');
  const out = problems(text);
  t.match(out, [/^site\.yaml:12:\d+ rules\[1\]\.if\.time\.between\[0\]: /]);
  t.equal(out.length, 1, 'schema errors come first; cross-checks run on a valid file');
  const fixed = text.replace('25:00', '18:00');
  t.same(problems(fixed), [
    'site.yaml:2:11 timezone: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin)',
    'site.yaml:7:26 rules[0].then[0].write.device: unknown device "ghost"',
    'site.yaml:8:25 rules[0].then[1].lock.locks[0]: unknown lock "nope"',
    'site.yaml:9:24 rules[0].then[2].lock.group: no lock is in group "lobby"',
    'site.yaml:10:9 rules[1].id: rule id "r1" is already used by rules[0]',
  ]);
});

t.test('an event-triggered rule must name the series of its windows', async (t) => {
  const text = [
    'site: s1',
    'rules:',
    '  - id: r',
    '    when: { event: { type: x } }',
    '    if: { all: [{ sum: { window: 5m, op: ">", value: 1 } }] }',
    '    then: [{ event: { type: y } }]',
  ].join('\n');
  t.same(problems(text), [
    'site.yaml:5:24 rules[0].if.all[0].sum: an event-triggered rule has no reading series of its own: name both device and point',
  ]);
});

t.test('a schedule must be a cron expression', async (t) => {
  const text = ['site: s1', 'rules:', '  - id: r', '    when: { schedule: "61 * * * *" }', '    then: [{ event: { type: y } }]'].join('\n');
  t.same(problems(text), [
    'site.yaml:4:23 rules[0].when.schedule: not a cron expression: Constraint error, got value 61 expected range 0-59',
  ]);
});

t.test('YAML syntax errors carry a position', async (t) => {
  const out = problems('site: s1\ndrivers: [\n');
  t.ok(out.length > 0);
  t.match(out[0], /^site\.yaml:\d+:\d+ /);
});

t.test('a missing file is a clear error', async (t) => {
  t.throws(() => loadConfigFile('/nonexistent/site.yaml'), { message: /\/nonexistent\/site\.yaml:0:0 file not found/ });
});
