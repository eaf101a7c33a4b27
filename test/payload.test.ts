// Payload decoding, table-driven: each case is a payload and what it must become.
import t from 'tap';
import { PayloadError, decodeTelemetry, type RejectReason } from '../drivers/payloads/telemetry.js';
import { parseDeviceTopic } from '../drivers/mqtt/topics.js';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const opts = { device: 'd1', now: NOW, maxReadings: 5 };
const decode = (payload: string, point?: string) => decodeTelemetry(Buffer.from(payload), { ...opts, ...(point ? { point } : {}) });

t.test('accepted forms', async (t) => {
  t.same(decode('{"a": 1.5, "b": false, "c": "x"}'), [
    { ts: NOW, device: 'd1', point: 'a', value: 1.5 },
    { ts: NOW, device: 'd1', point: 'b', value: false },
    { ts: NOW, device: 'd1', point: 'c', value: 'x' },
  ]);
  t.same(decode('{"a": 1, "ts": 1780000000000}')[0]?.ts, 1780000000000, 'ts in ms');
  t.same(decode('{"a": 1, "ts": 1780000000}')[0]?.ts, 1780000000000, 'ts in seconds');
  t.same(decode('{"a": 1, "ts": "2026-05-01T00:00:00.250Z"}')[0]?.ts, Date.UTC(2026, 4, 1, 0, 0, 0, 250), 'ISO ts');
  t.same(
    decode('[{"a": 1}, {"a": 2}]').map((r) => r.value),
    [1, 2],
  );
  t.same(decode('{"a": {"value": 2, "unit": "V", "quality": "bad"}}'), [
    { ts: NOW, device: 'd1', point: 'a', value: 2, unit: 'V', quality: 'bad' },
  ]);
  t.same(decode('-1.5e3', 'p'), [{ ts: NOW, device: 'd1', point: 'p', value: -1500 }]);
  t.same(decode(' false ', 'p')[0]?.value, false);
  t.same(decode('[]'), [], 'an empty array is no readings');
});

t.test('SenML (RFC 8428)', async (t) => {
  const r = decode(
    JSON.stringify([
      { bn: 'dev:', bt: 1780000000, bu: 'A', bv: 10, n: 'i', v: 1 },
      { n: 'i', t: 1, v: 2, u: 'mA' },
      { n: 's', vs: 'on' },
      { n: 'rel', t: -5, v: 0 },
    ]),
  );
  t.same(
    r.map((x) => [x.point, x.ts, x.value, x.unit]),
    [
      ['i', 1780000000000, 11, 'A'],
      ['i', 1780000001000, 12, 'mA'],
      ['s', 1780000000000, 'on', 'A'],
      ['rel', 1780000000000 - 5000, 10, 'A'],
    ],
  );
  t.same(decode(JSON.stringify([{ n: 'x', v: 1, t: -60 }]))[0]?.ts, NOW - 60_000, 'small times are relative to now');
  t.same(decode(JSON.stringify([{ bn: 'whole-name', v: 3 }]))[0]?.point, 'whole-name', 'no n: the base name is the point');
});

t.test('rejected forms name the reason and the place', async (t) => {
  const cases: [string, string | undefined, RejectReason, RegExp][] = [
    ['', undefined, 'empty', /empty payload/],
    ['{"a": 1', undefined, 'invalid_json', /not JSON/],
    ['42', undefined, 'bad_shape', /payload must be an object/],
    ['[1]', undefined, 'bad_shape', /\[0\] must be an object/],
    ['{"a": null}', undefined, 'bad_value', /\.a must be a number, boolean or string, got null/],
    ['{"a": [1]}', undefined, 'bad_value', /\.a must be a number/],
    ['{"a": {"value": 1, "quality": "meh"}}', undefined, 'bad_value', /quality must be good, uncertain or bad/],
    ['{"a": 1, "ts": "soon"}', undefined, 'bad_timestamp', /\.ts is not a plausible time/],
    ['{"a": 1, "ts": 1}', undefined, 'bad_timestamp', /plausible/],
    [`{"a": 1, "ts": ${NOW + 2 * 86_400_000}}`, undefined, 'bad_timestamp', /at most a day ahead/],
    ['{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}', undefined, 'too_many_readings', /more than 5 readings/],
    ['[{"n": "x"}]', undefined, 'bad_senml', /\[0\] has no value/],
    ['[{"n": "x", "v": "1"}]', undefined, 'bad_senml', /\[0\]\.v must be a number/],
    ['[{"n": "s1", "v": 1}, {"s2": 2}]', undefined, 'bad_senml', /\[1\] has no value/],
    ['warm', 'p', 'not_a_number', /expects a plain number/],
    ['1e999', 'p', 'bad_value', /out of range/],
    [`{"${'x'.repeat(129)}": 1}`, undefined, 'bad_shape', /point names must be 1-128/],
  ];
  for (const [payload, point, reason, message] of cases) {
    try {
      decode(payload, point);
      t.fail(`accepted ${payload.slice(0, 30)}`);
    } catch (err) {
      t.ok(err instanceof PayloadError, 'a PayloadError');
      t.equal((err as PayloadError).reason, reason, `${payload.slice(0, 30)} → ${reason}`);
      t.match((err as Error).message, message);
    }
  }
});

t.test('topics', async (t) => {
  t.same(parseDeviceTopic('devices/s/z/d/telemetry'), { site: 's', zone: 'z', device: 'd', kind: 'telemetry' });
  t.same(parseDeviceTopic('devices/s/z/d/telemetry/temp'), { site: 's', zone: 'z', device: 'd', kind: 'telemetry', point: 'temp' });
  t.same(parseDeviceTopic('devices/s/z/d/status')?.kind, 'status');
  for (const bad of [
    'devices/s/z/d',
    'devices/s/z/d/other',
    'devices/s/z/d/status/x',
    'devices//z/d/telemetry',
    'x/s/z/d/telemetry',
    'devices/s/z/d/telemetry/',
  ]) {
    t.equal(parseDeviceTopic(bad), null, bad);
  }
});
