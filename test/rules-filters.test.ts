// State-change triggers and device filters (zone, tags, id) of the rule engine.
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../config/site.js';
import { RuleEngine, type EngineState } from '../gateway/rules/engine.js';
import { M, T0, engine, ev, load, names, rd, type Obj } from './helpers/rules.js';

const change = (extra: Obj = {}) => ({ change: { device: 'door-*', point: 'open', ...extra } });

t.test('change: the first reading is not a change; each differing newer value is', async (t) => {
  const e = engine([{ id: 'c', when: change() }]);
  t.same(names(e.process([rd(T0, 'door-1', 'open', false)])), [], 'first sight of a point');
  t.same(names(e.process([rd(T0 + M, 'door-1', 'open', false)])), [], 'same value again');
  t.same(names(e.process([rd(T0 + 2 * M, 'door-1', 'open', true)])), ['c@2']);
  t.same(names(e.process([rd(T0 + 3 * M, 'door-1', 'open', true)])), []);
  t.same(names(e.process([rd(T0 + 4 * M, 'door-1', 'open', false)])), ['c@4']);
  t.same(names(e.process([rd(T0 + 5 * M, 'door-2', 'open', true)])), [], 'another series has its own history');
  t.same(names(e.process([rd(T0 + 6 * M, 'door-2', 'open', false)]), true), ['c@6 door-2/open']);
});

t.test('change: an older (out-of-order) reading is not a change and does not roll back', async (t) => {
  const e = engine([{ id: 'c', when: change() }]);
  e.process([rd(T0 + 10 * M, 'door-1', 'open', false)]);
  t.same(names(e.process([rd(T0 + 5 * M, 'door-1', 'open', true)])), [], 'late reading');
  t.same(names(e.process([rd(T0 + 11 * M, 'door-1', 'open', false)])), [], 'still false: the late true did not become latest');
});

t.test('change: from/to select the transition; previous and value reach the actions', async (t) => {
  const then = [{ event: { type: 'door.changed', data: { was: '{{previous}}', now: '{{value}}', zone: '{{zone}}' } } }];
  const e = engine([{ id: 'opened', when: change({ from: false, to: true }), then }], 'UTC', [{ id: 'door-1', zone: 'lobby' }]);
  e.process([rd(T0, 'door-1', 'open', false)]);
  const [f] = e.process([rd(T0 + M, 'door-1', 'open', true)]);
  t.equal(f?.rule, 'opened');
  t.same(f?.context, { rule: 'opened', ts: T0 + M, zone: 'lobby', device: 'door-1', point: 'open', value: true, previous: false });
  t.same(f?.actions, [{ event: { type: 'door.changed', data: { was: 'false', now: 'true', zone: 'lobby' } } }]);
  t.same(names(e.process([rd(T0 + 2 * M, 'door-1', 'open', false)])), [], 'true → false is not from false to true');
  const numeric = engine([{ id: 'mode', when: { change: { device: 'ahu', point: 'mode', to: 3 } } }]);
  numeric.process([rd(T0, 'ahu', 'mode', 1)]);
  t.same(names(numeric.process([rd(T0 + M, 'ahu', 'mode', 2), rd(T0 + 2 * M, 'ahu', 'mode', 3), rd(T0 + 3 * M, 'ahu', 'mode', 3)])), [
    'mode@2',
  ]);
});

t.test('change: NaN to NaN is no change (a dead sensor is reported once)', async (t) => {
  const e = engine([{ id: 'c', when: { change: { device: 's', point: 'v' } } }]);
  const out = e.process([rd(T0, 's', 'v', 1), rd(T0 + M, 's', 'v', NaN), rd(T0 + 2 * M, 's', 'v', NaN), rd(T0 + 3 * M, 's', 'v', 2)]);
  t.same(names(out), ['c@1', 'c@3']);
});

t.test('change: the last value survives a snapshot, so a change across a restart fires', async (t) => {
  const rules = [{ id: 'c', when: change() }];
  const before = engine(rules);
  before.process([rd(T0, 'door-1', 'open', false)]);
  const state = JSON.parse(JSON.stringify(before.snapshot())) as EngineState;
  const after = engine(rules);
  after.restore(state);
  t.same(names(after.process([rd(T0 + M, 'door-1', 'open', true)])), ['c@1']);
});

t.test('change with if and for: conditions gate the transition like any reading rule', async (t) => {
  const e = engine([{ id: 'c', when: change({ to: true }), if: { time: { between: ['18:00', '06:00'] } } }]);
  e.process([rd(T0, 'door-1', 'open', false)]);
  t.same(names(e.process([rd(T0 + M, 'door-1', 'open', true)])), [], '12:01 is not after hours');
  e.process([rd(T0 + 2 * M, 'door-1', 'open', false)]);
  t.same(names(e.process([rd(T0 + 7 * 60 * M, 'door-1', 'open', true)])), ['c@420'], '19:00 is');
});

const DEVICES: Obj[] = [
  { id: 't-1', zone: 'server-room', tags: ['critical', 'hvac'] },
  { id: 't-2', zone: 'server-room', tags: ['hvac'] },
  { id: 't-3', zone: 'office', tags: ['critical'] },
];

t.test('trigger filters: zone glob and tags (all required) select the devices', async (t) => {
  const hot = { value: { op: '>', value: 30 } };
  const e = engine(
    [
      { id: 'by-zone', when: { reading: { device: '*', point: 'temp', zone: 'server-*' } }, if: hot },
      { id: 'by-tags', when: { reading: { point: 'temp', tags: ['critical', 'hvac'] } }, if: hot },
      { id: 'one-tag', when: { reading: { point: 'temp', tags: ['critical'] } }, if: hot },
    ],
    'UTC',
    DEVICES,
  );
  const out = e.process([rd(T0, 't-1', 'temp', 31), rd(T0, 't-2', 'temp', 31), rd(T0, 't-3', 'temp', 31), rd(T0, 'unknown', 'temp', 31)]);
  t.same(names(out, true), ['by-zone@0 t-1/temp', 'by-tags@0 t-1/temp', 'one-tag@0 t-1/temp', 'by-zone@0 t-2/temp', 'one-tag@0 t-3/temp']);
});

t.test('device condition: tests the triggering device, for readings and events', async (t) => {
  const e = engine(
    [
      {
        id: 'office-hot',
        when: { reading: { point: 'temp' } },
        if: { all: [{ device: { zone: 'office' } }, { value: { op: '>', value: 30 } }] },
      },
      { id: 'not-critical', when: { reading: { point: 'temp' } }, if: { not: { device: { tags: ['critical'] } } } },
      { id: 'by-id', when: { reading: { point: 'temp' } }, if: { device: { id: 't-*', zone: 'server-room', tags: ['hvac'] } } },
    ],
    'UTC',
    DEVICES,
  );
  const out = e.process([rd(T0, 't-1', 'temp', 35), rd(T0, 't-2', 'temp', 35), rd(T0, 't-3', 'temp', 35), rd(T0, 'x', 'temp', 35)]);
  t.same(names(out, true), [
    'by-id@0 t-1/temp',
    'not-critical@0 t-2/temp',
    'by-id@0 t-2/temp',
    'office-hot@0 t-3/temp',
    'not-critical@0 x/temp',
  ]);
});

t.test('event rules: an event names its zone (data.zone) or its device (data.device, else subject)', async (t) => {
  const e = engine(
    [
      {
        id: 'dock',
        when: { event: { type: 'detection.person', zone: 'loading-*' } },
        then: [{ event: { type: 'x', data: { z: '{{zone}}', d: '{{device}}' } } }],
      },
      { id: 'cam-office', when: { event: { type: 'detection.person' } }, if: { device: { zone: 'office' } } },
    ],
    'UTC',
    [{ id: 'cam-1', zone: 'office' }],
  );
  const a = e.process([ev(T0, 'detection.person', 'cam-1', { zone: 'loading-dock', device: 'cam-1' })]);
  t.same(names(a), ['dock@0'], "data.zone is the zone; it overrides the camera's own zone");
  t.same(a[0]?.actions, [{ event: { type: 'x', data: { z: 'loading-dock', d: 'cam-1' } } }]);
  const b = e.process([ev(T0 + M, 'detection.person', 'cam-1')]);
  t.same(names(b), ['cam-office@1'], "no data.zone: the subject device's zone");
  t.same(names(e.process([ev(T0 + 2 * M, 'detection.person', 'cam-9')])), [], 'an unknown device has no zone');
});

t.test('config: trigger filters naming no configured zone or tag are errors with a location', async (t) => {
  const site = (when: Obj) =>
    stringify({ site: 't', devices: DEVICES, rules: [{ id: 'r', when, then: [{ alert: { severity: 'low', message: 'm' } }] }] });
  t.throws(
    () => parseConfig(site({ reading: { point: 'temp', zone: 'server-rom' } }), 's.yaml'),
    /s\.yaml:\d+:\d+ rules\[0\]\.when\.reading\.zone: no device is in zone "server-rom" \(zones: server-room, office\)/,
  );
  t.throws(
    () => parseConfig(site({ change: { point: 'temp', tags: ['hvac', 'critcal'] } }), 's.yaml'),
    /rules\[0\]\.when\.change\.tags\[1\]: no device has tag "critcal"/,
  );
  t.doesNotThrow(() => parseConfig(site({ reading: { point: 'temp', zone: 'server-*' } }), 's.yaml'));
  t.doesNotThrow(
    () => parseConfig(site({ event: { type: 'detection.person', zone: 'loading-dock' } }), 's.yaml'),
    'event zones may be camera zones',
  );
  try {
    parseConfig(site({ change: { point: 'temp', from: [1] } }), 's.yaml');
    t.fail('an array is not a value');
  } catch (err) {
    t.ok(err instanceof ConfigError);
    t.match((err as Error).message, /s\.yaml:\d+:\d+/);
  }
});

t.test('a change rule restored from state keeps its kind (reading instance)', async (t) => {
  const rules = load([{ id: 'c', when: change(), if: { value: { op: '==', value: true } }, for: '5m' }]);
  const a = new RuleEngine(rules, { timezone: 'UTC' });
  a.process([rd(T0, 'door-1', 'open', false), rd(T0 + M, 'door-1', 'open', true)]);
  const b = new RuleEngine(rules, { timezone: 'UTC' });
  b.restore(JSON.parse(JSON.stringify(a.snapshot())) as EngineState);
  t.same(names(b.tick(T0 + 6 * M)), ['c@6'], 'the pending `for` survived and fires on tick');
});
