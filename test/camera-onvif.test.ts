// ONVIF: WS-Discovery and the Cam wrapper against a fake device on loopback (no ONVIF
// simulator exists to install), the fake checked against the real `onvif` client's own
// connect; error messages for the failures installers meet; `outpost discover cameras`.
import onvif from 'onvif';
import t from 'tap';
import { probeOnvif } from '../drivers/camera/discovery.js';
import { connectOnvif } from '../drivers/camera/onvif.js';
import { normaliseEvent, type OnvifEvent } from '../drivers/camera/onvif-parse.js';
import { startFakeOnvif, startPlainHttp, startSilentServer, type FakeOnvif } from './helpers/fake-onvif.js';
import { outpost } from './helpers/cli.js';
import { freePort } from './helpers/gateway.js';

const USER = 'admin';
const PASS = 's3cret&<pw>';
const STREAM = 'rtsp://127.0.0.1:8554/live/main?channel=1&subtype=0';
const creds = (fake: FakeOnvif, password = PASS) => ({ host: '127.0.0.1', port: fake.port, username: USER, password });

let fake: FakeOnvif;
t.before(async () => {
  fake = await startFakeOnvif({
    username: USER,
    password: PASS,
    ptz: true,
    streamUri: (p) => (p === 'profile_1' ? STREAM : 'rtsp://127.0.0.1:8554/live/sub'),
  });
});
t.teardown(() => fake.close());

t.test('discovery: a unicast probe finds the fake on loopback', async (t) => {
  const found = await probeOnvif({ timeoutMs: 300, targets: [{ host: '127.0.0.1', port: fake.discoveryPort }] });
  t.equal(found.length, 1, 'both probe types answered, one device');
  t.equal(fake.probes, 2);
  const cam = found[0];
  t.equal(cam.address, `http://127.0.0.1:${fake.port}/onvif/device_service`);
  t.equal(cam.host, '127.0.0.1');
  t.equal(cam.port, fake.port);
  t.equal(cam.urn, fake.urn);
  t.same(cam.types, ['NetworkVideoTransmitter', 'Device']);
  t.equal(cam.scopes.name, 'Fake Cam');
  t.equal(cam.scopes.hardware, 'FC-100');
  t.equal(cam.scopes.location, 'country/test, site/lab');
  t.same(cam.scopes.profiles, ['Streaming']);
});

t.test('device information, profiles, stream and snapshot URIs', async (t) => {
  const cam = await connectOnvif(creds(fake), { timeoutMs: 2000 });
  t.teardown(() => cam.close());
  t.same(await cam.deviceInformation(), {
    manufacturer: 'Outpost Test',
    model: 'FakeCam 100',
    firmwareVersion: '2.10',
    serialNumber: '0012345678',
    hardwareId: 'FC-100',
  });
  t.same(await cam.profiles(), [
    { token: 'profile_1', name: 'mainStream', encoding: 'H264', width: 1280, height: 720, fps: 25 },
    { token: 'profile_2', name: 'subStream', encoding: 'H264', width: 640, height: 360, fps: 15 },
  ]);
  t.equal(await cam.streamUri(), STREAM, 'first profile by default, & unescaped');
  t.equal(await cam.streamUri('profile_2'), 'rtsp://127.0.0.1:8554/live/sub');
  const req = fake.calls.filter((c) => c.action === 'GetStreamUri').at(-1)!;
  t.same(req.params, { ProfileToken: 'profile_2', Protocol: 'RTSP', Stream: 'RTP-Unicast' }, 'RTSP = RTP over the RTSP TCP connection');
  t.equal(req.user, USER, 'digest accepted');
  t.equal(await cam.snapshotUri(), `http://127.0.0.1:${fake.port}/snapshot/profile_1.jpg`);
  await t.rejects(cam.streamUri('nope'), { message: `ONVIF 127.0.0.1:${fake.port}: no profile "nope" (profiles: profile_1, profile_2)` });
});

t.test('PTZ presets and gotoPreset; a camera without PTZ says so', async (t) => {
  const cam = await connectOnvif(creds(fake), { timeoutMs: 2000 });
  t.teardown(() => cam.close());
  t.ok(cam.hasPtz);
  t.same(await cam.presets(), [
    { token: '1', name: 'Gate' },
    { token: '2', name: 'Yard' },
  ]);
  await cam.gotoPreset('2', 'profile_2');
  t.same(
    fake.calls.filter((c) => c.action === 'GotoPreset').map((c) => c.params),
    [{ ProfileToken: 'profile_2', PresetToken: '2' }],
  );
  await t.rejects(cam.gotoPreset('9'), { message: `ONVIF 127.0.0.1:${fake.port}: GotoPreset failed: No such preset` });

  const fixed = await startFakeOnvif({ profiles: 1 });
  t.teardown(() => fixed.close());
  const cam2 = await connectOnvif({ host: '127.0.0.1', port: fixed.port }, { timeoutMs: 2000 });
  t.teardown(() => cam2.close());
  t.notOk(cam2.hasPtz);
  await t.rejects(cam2.presets(), { message: `ONVIF 127.0.0.1:${fixed.port}: no PTZ (the camera offers no PTZ service)` });
  t.notOk(
    fixed.calls.some((c) => c.action === 'GetPresets'),
    'nothing sent',
  );
});

t.test('a motion event arrives through events(); stop unsubscribes', async (t) => {
  // This camera holds each pull for 30 s, as real ones do (up to the minute asked for).
  const slow = await startFakeOnvif({ username: USER, password: PASS, pullHoldMs: 30_000 });
  t.teardown(() => slow.close());
  const cam = await connectOnvif(creds(slow), { timeoutMs: 2000 });
  t.teardown(() => cam.close());
  const got: OnvifEvent[] = [];
  const errors: Error[] = [];
  const arrived = new Promise<void>((resolve) => {
    void cam
      .events(
        (e) => {
          got.push(e);
          if (got.length === 2) resolve();
        },
        { onError: (err) => errors.push(err) },
      )
      .then((stop) => {
        t.equal(slow.subscriptions(), 1);
        slow.emitMotion(true);
        setTimeout(() => slow.emitTamper(true), 50);
        t.teardown(stop);
      });
  });
  const before = Date.now();
  await arrived;
  t.equal(got[0].topic, 'RuleEngine/CellMotionDetector/Motion');
  t.equal(got[0].kind, 'motion');
  t.equal(got[0].state, true);
  t.equal(got[0].operation, 'Changed');
  t.same(got[0].source, { VideoSourceConfigurationToken: 'vsc1', Rule: 'MyRule' });
  t.ok(Math.abs(got[0].time - before) < 5000, 'camera time');
  t.match(got[1], { topic: 'RuleEngine/TamperDetector/Tamper', kind: 'tamper', state: true });
  t.same(errors, []);
  await new Promise((r) => setTimeout(r, 100)); // a pull is held again
  const started = Date.now();
  await cam.close();
  t.ok(Date.now() - started < 1000, 'close cuts the held pull');
  t.equal(slow.subscriptions(), 0, 'unsubscribed');
  t.ok(slow.calls.some((c) => c.action === 'Unsubscribe'));
});

t.test('events: a lost subscription is recreated after a pause', async (t) => {
  const cam = await connectOnvif(creds(fake), { timeoutMs: 2000 });
  t.teardown(() => cam.close());
  const errors: string[] = [];
  let onMotion = (_e: OnvifEvent) => {};
  await cam.events((e) => onMotion(e), { onError: (err) => errors.push(err.message) });
  const creates = () => fake.calls.filter((c) => c.action === 'CreatePullPointSubscription').length;
  const before = creates();
  fake.dropSubscriptions();
  while (creates() === before) await new Promise((r) => setTimeout(r, 50));
  t.same(errors, [`ONVIF 127.0.0.1:${fake.port}: PullMessages failed: Unknown subscription`]);
  const got = new Promise<OnvifEvent>((resolve) => (onMotion = resolve));
  fake.emitMotion(false);
  t.match(await got, { kind: 'motion', state: false });
});

t.test('normaliseEvent: topic shapes and states', async (t) => {
  const e = normaliseEvent({
    topic: 'tns1:VideoSource/tns1:MotionAlarm',
    message: {
      message: {
        $: { UtcTime: new Date(1000), PropertyOperation: 'Initialized' },
        data: { simpleItem: { $: { Name: 'State', Value: false } } },
      },
    },
  });
  t.same(e, { topic: 'VideoSource/MotionAlarm', kind: 'motion', state: false, time: 1000, source: {}, operation: 'Initialized' });
  const g = normaliseEvent({
    topic: { _: 'tns1:VideoSource/GlobalSceneChange/ImagingService' },
    message: { message: { data: { simpleItem: { $: { Name: 'State', Value: 'true' } } } } },
  });
  t.match(g, { kind: 'tamper', state: true });
  const o = normaliseEvent({
    topic: { _: 'tns1:Device/Trigger/DigitalInput' },
    message: {
      message: { data: { simpleItem: [{ $: { Name: 'InputToken', Value: 'DI1' } }, { $: { Name: 'LogicalState', Value: 'true' } }] } },
    },
  });
  t.match(o, { topic: 'Device/Trigger/DigitalInput', kind: 'other', state: 'true' });
});

t.test('wrong password or no credentials: authentication failed', async (t) => {
  const msg = `ONVIF 127.0.0.1:${fake.port}: authentication failed (check username/password)`;
  await t.rejects(connectOnvif(creds(fake, 'wrong'), { timeoutMs: 2000 }), { message: msg, kind: 'auth' });
  await t.rejects(connectOnvif({ host: '127.0.0.1', port: fake.port }, { timeoutMs: 2000 }), { message: msg }, 'GetProfiles needs a login');
  const strict = await startFakeOnvif({ username: USER, password: PASS, authFailStatus: 401 });
  t.teardown(() => strict.close());
  await t.rejects(
    connectOnvif(creds(strict, 'wrong'), { timeoutMs: 2000 }),
    {
      message: `ONVIF 127.0.0.1:${strict.port}: authentication failed (check username/password)`,
    },
    'HTTP 401 with the fault',
  );
});

t.test('unreachable, hung and non-ONVIF cameras', async (t) => {
  const port = await freePort();
  await t.rejects(connectOnvif({ host: '127.0.0.1', port }, { timeoutMs: 2000 }), {
    message: `ONVIF 127.0.0.1:${port}: unreachable: ECONNREFUSED`,
    kind: 'unreachable',
  });

  const silent = await startSilentServer();
  t.teardown(() => silent.close());
  const started = Date.now();
  await t.rejects(connectOnvif({ host: '127.0.0.1', port: silent.port, username: USER, password: PASS }, { timeoutMs: 400 }), {
    message: `ONVIF 127.0.0.1:${silent.port}: no answer within 400 ms`,
    kind: 'timeout',
  });
  const took = Date.now() - started;
  t.ok(took >= 350 && took < 1400, `timed out after ${took} ms`);

  const web = await startPlainHttp();
  t.teardown(() => web.close());
  await t.rejects(connectOnvif({ host: '127.0.0.1', port: web.port }, { timeoutMs: 2000 }), {
    message: `ONVIF 127.0.0.1:${web.port}: not an ONVIF device (HTTP 404, no SOAP in answer to GetSystemDateAndTime)`,
    kind: 'not-onvif',
  });
});

t.test('the real onvif client connects to the fake the way it does to a camera', async (t) => {
  const withServices = await startFakeOnvif({ username: USER, password: PASS, services: true });
  t.teardown(() => withServices.close());
  const expected = new Map([
    [fake, ['GetSystemDateAndTime', 'GetServices', 'GetCapabilities', 'GetProfiles', 'GetVideoSources']],
    [withServices, ['GetSystemDateAndTime', 'GetServices', 'GetProfiles', 'GetVideoSources']],
  ]);
  for (const [dev, calls] of expected) {
    const cam = new onvif.Cam({ hostname: '127.0.0.1', port: dev.port, username: USER, password: PASS, timeout: 2000, autoconnect: false });
    const from = dev.calls.length;
    await new Promise<void>((resolve, reject) => cam.connect((err) => (err ? reject(err) : resolve())));
    t.equal(cam.activeSource?.profileToken, 'profile_1');
    // GetProfiles and GetVideoSources go out together: compare them as a set.
    const got = dev.calls.slice(from).map((c) => c.action);
    t.same([...got.slice(0, -2), ...got.slice(-2).sort()], calls);
  }
  // Our wrapper takes the GetServices path too.
  const cam = await connectOnvif(creds(withServices), { timeoutMs: 2000 });
  t.teardown(() => cam.close());
  t.equal(await cam.streamUri(), 'rtsp://127.0.0.1:8554/profile_1?transport=tcp&unicast=true');
  t.notOk(withServices.calls.slice(-4).some((c) => c.action === 'GetCapabilities'));
});

t.test('outpost discover cameras --address … --json', async (t) => {
  const port = await freePort();
  const probe = ['discover', 'cameras', '--address', `127.0.0.1:${fake.discoveryPort}`, '--timeout', '300ms', '--username', USER];
  const [r, bad, none] = await Promise.all([
    outpost([...probe, '--password', PASS, '--json']),
    outpost([...probe, '--password', 'wrong']),
    outpost(['discover', 'cameras', '--address', `127.0.0.1:${port}`, '--timeout', '200ms']),
  ]);
  t.equal(r.code, 0, r.stderr);
  const [cam, ...rest] = JSON.parse(r.stdout) as {
    host: string;
    port: number;
    urn: string;
    device: { model: string };
    profiles: { token: string; streamUri: string }[];
  }[];
  t.same(rest, []);
  t.match(cam, { host: '127.0.0.1', port: fake.port, urn: fake.urn, device: { model: 'FakeCam 100' } });
  t.same(
    cam.profiles.map((p) => [p.token, p.streamUri]),
    [
      ['profile_1', STREAM],
      ['profile_2', 'rtsp://127.0.0.1:8554/live/sub'],
    ],
  );

  t.equal(bad.code, 1, 'a camera that cannot be read is an error');
  t.match(bad.stdout, /1 camera found:/);
  t.match(bad.stdout, `error: ONVIF 127.0.0.1:${fake.port}: authentication failed (check username/password)`);

  t.equal(none.code, 0, 'the probe ran');
  t.equal(none.stdout, '');
  t.match(none.stderr, `no camera answered from 127.0.0.1:${port} within 200 ms`);
});
