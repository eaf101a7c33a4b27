// The pure rule engine: conditions, windows, timers, hysteresis, state round-trips, time zones.
import t from 'tap';
import { LocalClock, minuteOfDay } from '../gateway/rules/clock.js';
import { RuleEngine, type EngineState, type Fact, type Firing } from '../gateway/rules/engine.js';
import type { RuleConfig } from '../config/rules-schema.js';
import { ALERT, M, T0, engine, ev, load, names, on, rd, type Obj } from './helpers/rules.js';

const gt30 = { value: { op: '>', value: 30 } };

/** Whether `cond` holds for a reading of d/go at `at` (after `facts`). */
function holds(cond: Obj, o: { facts?: Fact[]; at?: number; value?: number | boolean | string; tz?: string } = {}): boolean {
  const e = engine([{ id: 'c', when: on('d', 'go'), if: cond }], o.tz);
  e.process(o.facts ?? []);
  return e.process([rd(o.at ?? T0, 'd', 'go', o.value ?? 0)]).length === 1;
}

t.test('value: numbers numerically, other types strictly, ordering non-numbers is false', async (t) => {
  const v = (op: string, value: unknown, reading: number | boolean | string) => holds({ value: { op, value } }, { value: reading });
  t.ok(v('>', 30, 31));
  t.notOk(v('>', 30, 30));
  t.ok(v('>=', 30, 30));
  t.ok(v('<', 30, 29.5));
  t.ok(v('<=', 30, 30));
  t.ok(v('==', 30, 30));
  t.ok(v('!=', 30, 31));
  t.notOk(v('!=', 30, 30));
  t.ok(v('==', true, true));
  t.notOk(v('==', true, false));
  t.notOk(v('==', 1, true), 'true is not 1');
  t.ok(v('==', 'on', 'on'));
  t.ok(v('!=', 'on', 'off'));
  t.ok(v('!=', 1, '1'));
  t.notOk(v('>', 'a', 'b'));
  t.notOk(v('<', 'a', 'b'));
  t.notOk(v('>', 1, true));
});

t.test('windows: far edge exclusive, now inclusive', async (t) => {
  const xs = [rd(T0 - M, 'd', 'x', 1), rd(T0 - M + 1, 'd', 'x', 2)];
  const win = (agg: string, op: string, value: number, facts = xs) =>
    holds({ [agg]: { window: '1m', device: 'd', point: 'x', op, value } }, { facts });
  t.ok(win('sum', '==', 2), 'a sample exactly 1m old is out, 1m-1ms is in');
  t.ok(win('count', '==', 1));
  t.ok(win('sum', '==', 5, [...xs, rd(T0, 'd', 'x', 3)]), 'a sample at now is in');
});

t.test('windows: avg/min/max/sum/count; booleans are 1/0, strings ignored; empty is false', async (t) => {
  const facts = [
    rd(T0 - 4 * M, 'd', 'x', 3),
    rd(T0 - 3 * M, 'd', 'x', 1),
    rd(T0 - 2 * M, 'd', 'x', 5),
    rd(T0 - M, 'd', 'x', true),
    rd(T0 - M, 'd', 'x', 'oops'),
  ];
  const win = (agg: string, op: string, value: number, f = facts) =>
    holds({ [agg]: { window: '5m', device: 'd', point: 'x', op, value } }, { facts: f });
  t.ok(win('avg', '==', 2.5));
  t.ok(win('min', '==', 1));
  t.ok(win('max', '==', 5));
  t.ok(win('sum', '==', 10));
  t.ok(win('count', '==', 4));
  t.notOk(win('max', '>', 5));
  for (const agg of ['avg', 'min', 'max', 'sum', 'count']) {
    t.notOk(win(agg, '<', 1, []), `${agg} over an empty window`);
    t.notOk(win(agg, '!=', 99, [rd(T0 - 5 * M, 'd', 'x', 1)]), `${agg} when all samples expired`);
  }
});

t.test('windows over the triggering series, and over a partly named one', async (t) => {
  const e = engine([
    { id: 'avg', when: on('temp-*', 't'), if: { avg: { window: '5m', op: '>', value: 30 } } },
    { id: 'peer', when: on('temp-*', 't'), if: { max: { window: '5m', point: 'h', op: '>', value: 80 } } },
  ]);
  const ids = (fs: Firing[]) => fs.map((f) => `${f.rule} ${f.key}`);
  t.same(ids(e.process([rd(T0, 'temp-1', 't', 20), rd(T0 + 1, 'temp-1', 't', 40)])), [], 'avg 30 is not > 30');
  t.same(ids(e.process([rd(T0 + 2, 'temp-1', 't', 45)])), ['avg temp-1/t'], 'the triggering reading is in its window');
  t.same(ids(e.process([rd(T0 + 3, 'temp-2', 't', 31)])), ['avg temp-2/t'], 'each series has its own window');
  t.same(ids(e.process([rd(T0 + 4, 'temp-3', 'h', 90), rd(T0 + 5, 'temp-1', 't', 0), rd(T0 + 6, 'temp-3', 't', 0)])), ['peer temp-3/t']);
  t.equal(e.stats().series, 4, 'temp-1/t, temp-2/t, temp-3/t, temp-3/h');
  e.tick(T0 + 6 * M);
  t.equal(e.stats().series, 0, 'tick expires samples');
});

t.test('at most 10 000 samples per series', async (t) => {
  const facts = Array.from({ length: 10_001 }, (_, i) => rd(T0 - 20_000 + i, 'd', 'x', i));
  const c = (op: string, value: number) => holds({ count: { window: '1d', device: 'd', point: 'x', op, value } }, { facts });
  t.ok(c('==', 10_000));
  t.ok(holds({ min: { window: '1d', device: 'd', point: 'x', op: '==', value: 1 } }, { facts }), 'the oldest was dropped');
});

t.test('point: latest value of another series; never reported is false', async (t) => {
  const door = (op: string, value: unknown, facts: Fact[]) => holds({ point: { device: 'door-1', point: 'open', op, value } }, { facts });
  t.notOk(door('==', true, []));
  t.notOk(door('!=', true, []), 'unknown is false even for !=');
  t.ok(door('==', true, [rd(T0 - M, 'door-1', 'open', true)]));
  t.notOk(door('==', true, [rd(T0 - M, 'door-1', 'open', true), rd(T0 - 1, 'door-1', 'open', false)]));
  t.ok(
    door('==', true, [rd(T0 - M, 'door-1', 'open', true), rd(T0 - 2 * M, 'door-1', 'open', false)]),
    'a late, older reading does not roll back',
  );
});

t.test('none: type exact or prefix, optional subject, within edge', async (t) => {
  const none = (n: Obj, facts: Fact[]) => holds({ none: { within: '5m', ...n } }, { facts });
  t.ok(none({ type: 'alarm.*' }, []));
  t.notOk(none({ type: 'alarm.*' }, [ev(T0 - 5 * M + 1, 'alarm.disarmed')]));
  t.ok(none({ type: 'alarm.*' }, [ev(T0 - 5 * M, 'alarm.disarmed')]), 'exactly `within` ago is out');
  t.ok(none({ type: 'alarm' }, [ev(T0 - M, 'alarm.disarmed')]), 'no * means exact');
  t.notOk(none({ type: 'alarm.disarmed' }, [ev(T0 - M, 'alarm.disarmed')]));
  t.ok(none({ type: 'alarm.*', subject: 'zone-1' }, [ev(T0 - M, 'alarm.disarmed', 'zone-2')]));
  t.notOk(none({ type: 'alarm.*', subject: 'zone-1' }, [ev(T0 - M, 'alarm.disarmed', 'zone-1')]));
});

t.test('all / any / not nest', async (t) => {
  const cond = {
    all: [{ any: [gt30, { value: { op: '<', value: 0 } }] }, { not: { point: { device: 'hvac', point: 'on', op: '==', value: true } } }],
  };
  t.ok(holds(cond, { value: 31 }));
  t.ok(holds(cond, { value: -1 }));
  t.notOk(holds(cond, { value: 10 }));
  t.notOk(holds(cond, { value: 31, facts: [rd(T0 - 1, 'hvac', 'on', true)] }));
});

t.test('for: fires on a later fact, on tick, and resets when false', async (t) => {
  const rules = [{ id: 'f', when: on('d', 'x'), if: gt30, for: '5m' }];
  let e = engine(rules);
  t.same(names(e.process([rd(T0, 'd', 'x', 31), rd(T0 + 4 * M, 'd', 'x', 32), rd(T0 + 5 * M, 'd', 'x', 33)])), ['f@5']);
  e = engine(rules);
  e.process([rd(T0, 'd', 'x', 31)]);
  t.same(e.tick(T0 + 5 * M - 1), []);
  const [f] = e.tick(T0 + 5 * M);
  t.same(f?.context, { rule: 'f', device: 'd', point: 'x', value: 31, ts: T0 + 5 * M }, 'firing ts is the tick');
  t.same(e.tick(T0 + 20 * M), [], 'fired once');
  e = engine(rules);
  t.same(e.process([rd(T0, 'd', 'x', 31), rd(T0 + 3 * M, 'd', 'x', 29), rd(T0 + 4 * M, 'd', 'x', 31)]), []);
  t.same(e.tick(T0 + 9 * M - 1), [], 'since restarted at 4m');
  t.same(names(e.tick(T0 + 9 * M)), ['f@9']);
});

t.test('hysteresis: clear at another threshold; without clear `if` false re-arms; no `if` is not edge-triggered', async (t) => {
  const run = (rule: Obj, values: (number | string)[]) => {
    const e = engine([{ id: 'h', when: on('d', 'x'), ...rule }]);
    return values.map((v, i) => e.process([rd(T0 + i * M, 'd', 'x', v)]).length).join('');
  };
  t.equal(run({ if: gt30, clear: { value: { op: '<', value: 28 } } }, [31, 29, 31, 27, 31]), '10001');
  t.equal(run({ if: gt30 }, [31, 32, 29, 31]), '1001');
  t.equal(run({}, [1, 2, 3]), '111');
  t.equal(run({ cooldown: '2m' }, [1, 2, 3, 4]), '1010', 'cooldown on a rule without if');
});

t.test('cooldown: a re-armed instance waits, then fires at the first evaluation after it', async (t) => {
  const e = engine([{ id: 'c', when: on('d', 'x'), if: gt30, cooldown: '10m' }]);
  t.same(names(e.process([rd(T0, 'd', 'x', 31), rd(T0 + M, 'd', 'x', 20), rd(T0 + 2 * M, 'd', 'x', 31)])), ['c@0']);
  t.same(e.tick(T0 + 10 * M - 1), []);
  t.same(names(e.tick(T0 + 10 * M)), ['c@10']);
  const noIf = engine([{ id: 'n', when: on('d', 'x'), cooldown: '10m' }]);
  noIf.process([rd(T0, 'd', 'x', 1), rd(T0 + M, 'd', 'x', 1)]);
  t.same(noIf.tick(T0 + 11 * M), [], 'a rule without if has no trailing firing');
});

t.test('triggers: globs, event types and subjects, per-instance keys', async (t) => {
  const e = engine([
    { id: 'g', when: on('temp-*', '*'), if: gt30 },
    { id: 'dot', when: on('a.b', 'x') },
    { id: 'door', when: { event: { type: 'door.*', subject: 'door-1' } }, if: { not: gt30 } },
    { id: 'any', when: { event: { type: 'lock.jammed' } } },
  ]);
  const fs = e.process([
    rd(T0, 'temp-1', 't', 31),
    rd(T0, 'temp-', 'h', 31),
    rd(T0, 'hum-1', 't', 31),
    rd(T0, 'temp-2', 't', 31),
    rd(T0, 'temp-1', 't', 32),
    rd(T0, 'axb', 'x', 1),
  ]);
  t.same(names(fs, true), ['g@0 temp-1/t', 'g@0 temp-/h', 'g@0 temp-2/t'], 'instances fire independently');
  t.same(
    names(
      e.process([ev(T0, 'door.forced', 'door-1'), ev(T0, 'door.forced', 'door-2'), ev(T0, 'lock.jammed'), ev(T0, 'lock.jammed')]),
      true,
    ),
    ['door@0 door-1', 'any@0 ', 'any@0 '],
  );
  const f = e.process([ev(T0 + 1, 'lock.jammed', 'l-1')])[0];
  t.same(
    f.context,
    { rule: 'any', type: 'lock.jammed', subject: 'l-1', device: 'l-1', ts: T0 + 1 },
    'an event is about its subject device',
  );
  t.same(f.actions, [{ alert: { severity: 'high', message: 'm', key: 'any:l-1' } }], 'event rules key by subject');
  t.same(e.stats(), { rules: 4, evaluations: 8, series: 0 }, 'door-2 and axb evaluate nothing');
});

t.test('templates render every string value, not keys, and never touch the config', async (t) => {
  const then = [
    { alert: { severity: 'high', message: '{{rule}} {{device}}/{{point}}={{value}} [{{type}}|{{subject}}] {{nope}}' } },
    { alert: { severity: 'low', message: 'x', key: 'k-{{ device }}' } },
    { publish: { topic: 'site/{{device}}', payload: { '{{rule}}': ['{{value}}', 1, true, null, { d: '{{device}}' }] } } },
    { write: { device: 'hvac', point: 'ac', value: '{{value}}' } },
  ];
  const rules = load([{ id: 'tpl', when: on('temp-*', 't'), then }]);
  const before = JSON.stringify(rules);
  const [f] = new RuleEngine(rules, { timezone: 'UTC' }).process([rd(T0, 'temp-1', 't', 31.5)]);
  t.same(f?.actions, [
    { alert: { severity: 'high', message: 'tpl temp-1/t=31.5 [|] {{nope}}', key: 'tpl:temp-1/t' } },
    { alert: { severity: 'low', message: 'x', key: 'k-temp-1' } },
    { publish: { topic: 'site/temp-1', payload: { '{{rule}}': ['31.5', 1, true, null, { d: 'temp-1' }] } } },
    { write: { device: 'hvac', point: 'ac', value: '31.5' } },
  ]);
  t.equal(JSON.stringify(rules), before);
});

t.test('disabled rules never fire; bad config is refused', async (t) => {
  const e = engine([
    { id: 'off', enabled: false, when: on('*', '*') },
    { id: 'on', when: on('*', '*') },
  ]);
  t.same(names(e.process([rd(T0, 'd', 'x', 1)])), ['on@0']);
  t.equal(e.stats().rules, 1);
  // The config loader refuses these first; the engine still guards itself when given them directly.
  const raw = (rules: Obj[]) => rules.map((r) => ({ enabled: true, then: ALERT, ...r })) as unknown as RuleConfig[];
  t.throws(
    () =>
      new RuleEngine(
        raw([
          { id: 'a', when: on('d', 'x') },
          { id: 'a', when: on('d', 'y') },
        ]),
        { timezone: 'UTC' },
      ),
    /used twice/,
  );
  t.throws(() => new RuleEngine(raw([{ id: 'a', when: on('d', 'x') }]), { timezone: 'Mars/Olympus' }));
  t.throws(
    () => new RuleEngine(raw([{ id: 'a', when: on('d', 'x'), if: { time: { between: ['25:00', '06:00'] } } }]), { timezone: 'UTC' }),
    /time of day/,
  );
});

// One scenario exercising windows, for, active, cooldown and none across a restore.
const SCENARIO_RULES: Obj[] = [
  { id: 'win', when: on('d', 'x'), if: { avg: { window: '5m', op: '>', value: 30 } } },
  { id: 'for', when: on('d', 'y'), if: gt30, for: '5m' },
  { id: 'cool', when: on('d', 'z'), cooldown: '10m' },
  { id: 'hyst', when: on('d', 'w'), if: gt30, clear: { value: { op: '<', value: 28 } }, cooldown: '1m' },
  { id: 'door', when: { event: { type: 'door.opened' } }, if: { none: { type: 'alarm.*', within: '10m' } } },
];
const at = (m: number) => T0 + m * M;
const FIRST: (Fact[] | number)[] = [
  [rd(at(0), 'd', 'x', 40), rd(at(0), 'd', 'y', 31), rd(at(0), 'd', 'z', 1), rd(at(0), 'd', 'w', 31)],
  [rd(at(1), 'd', 'x', 10), rd(at(1), 'd', 'w', 29)],
  [ev(at(2), 'alarm.armed'), ev(at(2), 'door.opened')],
  [rd(at(3), 'd', 'x', 60), rd(at(3), 'd', 'z', 1)],
];
const SECOND: (Fact[] | number)[] = [
  at(4),
  at(5),
  [rd(at(6), 'd', 'x', 0), rd(at(6), 'd', 'w', 27)],
  [rd(at(7), 'd', 'x', 31), rd(at(7), 'd', 'w', 31)],
  [rd(at(9), 'd', 'z', 1)],
  [rd(at(10), 'd', 'z', 1)],
  [ev(at(11), 'door.opened')],
  [ev(at(12), 'door.opened')],
];
const play = (e: RuleEngine, steps: (Fact[] | number)[]) => steps.flatMap((s) => (typeof s === 'number' ? e.tick(s) : e.process(s)));
const roundTrip = (s: EngineState) => JSON.parse(JSON.stringify(s)) as EngineState;

t.test('snapshot → JSON → restore into a new engine continues exactly', async (t) => {
  const straight = engine(SCENARIO_RULES);
  t.same(names(play(straight, FIRST)), ['win@0', 'cool@0', 'hyst@0', 'win@3']);
  const expected = play(straight, SECOND);
  t.same(names(expected), ['for@5', 'win@7', 'hyst@7', 'cool@10', 'door@12'], 'needs the t=3 sample, since, active and cooldown');

  // The old config had a rule since removed, with a longer window on the same series.
  const old = engine([...SCENARIO_RULES, { id: 'gone', when: on('d', 'x'), if: { sum: { window: '1h', op: '>', value: 0 } } }]);
  play(old, FIRST);
  const state = roundTrip(old.snapshot());
  t.ok(state.instances.some((i) => i.rule === 'gone'));
  const resumed = engine(SCENARIO_RULES);
  resumed.restore(state);
  t.same(play(resumed, SECOND), expected);

  // Two shards' snapshots layered into one engine (the host re-shards this way).
  const shards = [engine(SCENARIO_RULES.slice(0, 2)), engine(SCENARIO_RULES.slice(2))];
  const states = shards.map((s) => (play(s, FIRST), roundTrip(s.snapshot())));
  const merged = engine(SCENARIO_RULES);
  for (const s of [...states, ...states]) merged.restore(s); // layering twice must not double anything
  t.same(
    merged.snapshot().series.find((s) => s.point === 'x')?.samples,
    { ts: [at(0), at(1), at(3)], v: [40, 10, 60] },
    'samples kept once',
  );
  t.same(merged.snapshot().events, [[at(2), 'alarm.armed', '']], 'events kept once');
  t.same(play(merged, SECOND), expected);
  t.throws(() => merged.restore({ version: 2 } as unknown as EngineState), /version/);
});

t.test('local time: Intl offsets across DST, cached per 15 minutes', async (t) => {
  const hm = (tz: string, iso: string) => {
    const m = minuteOfDay(new LocalClock(tz).localMinutes(Date.parse(iso)));
    return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  };
  t.equal(hm('Europe/Berlin', '2026-03-29T00:59:59Z'), '01:59');
  t.equal(hm('Europe/Berlin', '2026-03-29T01:00:00Z'), '03:00');
  t.equal(hm('Europe/Berlin', '2026-10-25T00:30:00Z'), '02:30');
  t.equal(hm('Europe/Berlin', '2026-10-25T01:30:00Z'), '02:30');
  t.equal(hm('America/New_York', '2026-03-08T06:59:00Z'), '01:59');
  t.equal(hm('America/New_York', '2026-03-08T07:00:00Z'), '03:00');
  t.equal(hm('Asia/Kolkata', '2026-01-05T00:00:00Z'), '05:30');
  const berlin = new LocalClock('Europe/Berlin');
  const spring = Date.parse('2026-03-29T00:00:00Z');
  for (let ts = spring; ts < spring + 2 * 3600_000; ts += 7_000) {
    const m = minuteOfDay(berlin.localMinutes(ts));
    if (m >= 120 && m < 180) t.fail(`02:xx does not exist on the spring-forward day (${new Date(ts).toISOString()})`);
  }
});

t.test('time conditions in Europe/Berlin and America/New_York, DST and midnight wrap', async (t) => {
  const time = (between: [string, string] | undefined, days: string[] | undefined, iso: string, tz = 'Europe/Berlin') =>
    holds({ time: { ...(between ? { between } : {}), ...(days ? { days } : {}) } }, { at: Date.parse(iso), tz });
  // Berlin spring forward 2026-03-29 02:00 CET → 03:00 CEST.
  t.notOk(time(['02:00', '03:00'], undefined, '2026-03-29T00:59:59Z'));
  t.notOk(time(['02:00', '03:00'], undefined, '2026-03-29T01:00:00Z'));
  t.ok(time(['01:30', '03:30'], undefined, '2026-03-29T00:30:00Z'));
  t.ok(time(['01:30', '03:30'], undefined, '2026-03-29T01:29:00Z'));
  t.notOk(time(['01:30', '03:30'], undefined, '2026-03-29T01:30:00Z'), 'to is exclusive');
  // Berlin fall back 2026-10-25 03:00 CEST → 02:00 CET: 02:xx happens twice.
  for (const iso of ['2026-10-25T00:00:00Z', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-25T01:59:00Z'])
    t.ok(time(['02:00', '03:00'], ['sun'], iso), iso);
  t.notOk(time(['02:00', '03:00'], undefined, '2026-10-25T02:00:00Z'));
  t.notOk(time(['02:00', '03:00'], undefined, '2026-10-24T23:59:00Z'));
  // Wrap midnight: days is the local day of the moment tested.
  t.ok(time(['22:00', '06:00'], ['sat'], '2026-10-24T20:00:00Z'));
  t.notOk(time(['22:00', '06:00'], ['sat'], '2026-10-24T19:59:00Z'));
  t.notOk(time(['22:00', '06:00'], ['sat'], '2026-10-24T22:30:00Z'), 'Sunday 00:30 local');
  t.ok(time(['22:00', '06:00'], ['sun'], '2026-10-24T22:30:00Z'));
  t.ok(time(['22:00', '06:00'], ['sun'], '2026-10-25T04:59:00Z'), '05:59 CET');
  t.notOk(time(['22:00', '06:00'], ['sun'], '2026-10-25T05:00:00Z'));
  t.ok(time(['08:00', '08:00'], undefined, '2026-10-25T12:00:00Z'), 'from == to is the whole day');
  t.ok(time(['23:00', '24:00'], undefined, '2026-10-25T22:59:00Z'));
  // New York: spring forward 2026-03-08 02:00 EST → 03:00 EDT, fall back 2026-11-01 02:00 EDT → 01:00 EST.
  const ny = (between: [string, string] | undefined, days: string[] | undefined, iso: string) =>
    time(between, days, iso, 'America/New_York');
  t.ok(ny(['01:00', '02:30'], undefined, '2026-03-08T06:59:00Z'));
  t.notOk(ny(['01:00', '02:30'], undefined, '2026-03-08T07:00:00Z'));
  for (const iso of ['2026-11-01T05:00:00Z', '2026-11-01T05:59:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:59:00Z'])
    t.ok(ny(['01:00', '02:00'], undefined, iso), iso);
  t.notOk(ny(['01:00', '02:00'], undefined, '2026-11-01T07:00:00Z'));
  t.ok(ny(undefined, ['mon'], '2026-03-10T02:00:00Z'), 'Tuesday in UTC, Monday 22:00 in New York');
  t.notOk(ny(undefined, ['tue'], '2026-03-10T02:00:00Z'));
  t.ok(ny(['18:00', '06:00'], ['fri'], '2026-01-10T04:00:00Z'), 'Fri 23:00 EST');
  t.notOk(ny(['18:00', '06:00'], ['fri'], '2026-01-10T06:00:00Z'), 'Sat 01:00 EST');
});

t.test('1 000 exact-trigger rules over 10 000 readings: one evaluation per reading', async (t) => {
  const rules = Array.from({ length: 1000 }, (_, i) => ({
    id: `r${i}`,
    when: on(`dev-${i}`, 'temp'),
    if: { value: { op: '>', value: 50 } },
  }));
  const e = engine(rules);
  const facts = Array.from({ length: 10_000 }, (_, k) => rd(T0 + k, `dev-${k % 1000}`, 'temp', Math.floor(k / 1000) % 2 === 0 ? 60 : 40));
  const fs = e.process(facts);
  t.equal(e.stats().evaluations, 10_000);
  t.equal(fs.length, 5000, 'each device fires on every other round (edge-triggered)');
  t.same(e.process([rd(T0 + 20_000, 'other', 'temp', 99)]), []);
  t.equal(e.stats().evaluations, 10_000, 'a reading no rule names costs no evaluation');
});

t.test('a fired rule re-arms on the tick when time alone makes its condition false', async (t) => {
  // "person detected between 18:00 and 06:00": with no detection during the day, the next
  // night's first detection must still fire.
  const e = engine([{ id: 'night', when: { event: { type: 'detection.person' } }, if: { time: { between: ['18:00', '06:00'] } } }]);
  const at = (h: number) => Date.UTC(2026, 0, 5, h); // UTC site
  t.same(e.process([ev(at(19), 'detection.person', 'zone-a')]).length, 1, 'fires at 19:00');
  t.same(e.process([ev(at(20), 'detection.person', 'zone-a')]).length, 0, 'edge-triggered: not again that night');
  t.same(e.tick(at(7) + 86_400_000), [], 'the morning tick re-arms it (never fires)');
  t.same(e.process([ev(at(19) + 86_400_000, 'detection.person', 'zone-a')]).length, 1, 'fires again the next night');
});

t.test('sequences: A then B within T (seen), and the negation (none)', async (t) => {
  const e = engine([{ id: 'seq', when: { event: { type: 'door.forced' } }, if: { seen: { type: 'badge.denied', within: '2m' } } }]);
  const at = (m: number) => T0 + m * M;
  t.same(names(e.process([ev(at(0), 'door.forced', 'd1')])), [], 'B without A');
  t.same(names(e.process([ev(at(1), 'badge.denied', 'd1'), ev(at(2), 'door.forced', 'd1')])), ['seq@2'], 'A then B within 2 min');
  t.same(names(e.process([ev(at(3), 'door.forced', 'd1')])), [], 'edge-triggered');
  t.same(names(e.process([ev(at(10), 'door.forced', 'd1')])), [], 're-arms (A is 9 min old)...');
  t.same(names(e.process([ev(at(20), 'badge.denied', 'd1'), ev(at(23), 'door.forced', 'd1')])), [], '...and B 3 min after A is too late');
});
