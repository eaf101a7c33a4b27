// Request planning (coalescing points into reads) and `outpost modbus plan`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../config/site.js';
import { formatPlan, planRequests, planWithoutCoalescing, type PlannedRequest } from '../drivers/modbus/planner.js';
import { resolvePoints, type ResolvedPoint } from '../drivers/modbus/points.js';
import type { ModbusDeviceConfig } from '../drivers/modbus/schema.js';
import { outpost } from './helpers/cli.js';

const LINE = { id: 'plant-tcp', transport: 'tcp', host: '10.0.0.5' };

function siteYaml(devices: Record<string, unknown>[]): string {
  return stringify({ site: 'plant', drivers: { modbus: { enabled: true, lines: [LINE] } }, devices });
}

/** A device's `modbus` section as the config loader gives it: validated, defaults filled. */
function device(modbus: Record<string, unknown>): ModbusDeviceConfig {
  const cfg = parseConfig(siteYaml([{ id: 'dev', zone: 'z', modbus: { line: 'plant-tcp', ...modbus } }]), 'test.yaml');
  return cfg.devices[0].modbus!;
}

function plan(modbus: Record<string, unknown>): { dev: ModbusDeviceConfig; points: ResolvedPoint[]; requests: PlannedRequest[] } {
  const dev = device(modbus);
  const { points } = resolvePoints(dev);
  return { dev, points, requests: planRequests(points, dev) };
}

/** [table, start, count, pollMs, point names] per request, for compact assertions. */
const shape = (rs: PlannedRequest[]) => rs.map((r) => [r.table, r.start, r.count, r.pollMs, r.points.map((p) => p.name).join(',')]);

const regs = (n: number, from = 0, extra: Record<string, unknown> = {}) =>
  Array.from({ length: n }, (_, i) => ({ name: `r${from + i}`, table: 'holding', address: from + i, ...extra }));

t.test('adjacent points merge into one request', async (t) => {
  const { requests } = plan({
    points: [
      { name: 'a', table: 'holding', address: 0, type: 'float32' },
      { name: 'b', table: 'holding', address: 2, type: 'float32' },
      { name: 'c', table: 'holding', address: 4 },
    ],
  });
  t.same(shape(requests), [['holding', 0, 5, 1000, 'a,b,c']]);
});

t.test('a gap up to maxGap is bridged; a wider gap splits', async (t) => {
  const points = [
    { name: 'a', table: 'input', address: 0 },
    { name: 'b', table: 'input', address: 4 }, // 3 unused registers (1-3)
    { name: 'c', table: 'input', address: 9 }, // 4 unused registers (5-8)
  ];
  t.same(shape(plan({ maxGap: 3, points }).requests), [
    ['input', 0, 5, 1000, 'a,b'],
    ['input', 9, 1, 1000, 'c'],
  ]);
  t.same(shape(plan({ maxGap: 4, points }).requests), [['input', 0, 10, 1000, 'a,b,c']]);
  t.equal(plan({ maxGap: 0, points }).requests.length, 3);
});

t.test('maxRegistersPerRequest splits a long run: 40 registers with max 32 → 32 + 8', async (t) => {
  const { requests } = plan({ maxRegistersPerRequest: 32, points: regs(40) });
  t.same(
    requests.map((r) => [r.start, r.count, r.points.length]),
    [
      [0, 32, 32],
      [32, 8, 8],
    ],
  );
});

t.test('maxCoilsPerRequest splits coils', async (t) => {
  const coils = Array.from({ length: 20 }, (_, i) => ({ name: `c${i}`, table: 'coil', address: 100 + i, type: 'bool' }));
  const { requests } = plan({ maxCoilsPerRequest: 8, maxRegistersPerRequest: 1, points: coils });
  const expected = [
    ['coil', 100, 8],
    ['coil', 108, 8],
    ['coil', 116, 4],
  ];
  t.same(
    requests.map((r) => [r.table, r.start, r.count]),
    expected,
    'the register limit does not apply to coils',
  );
});

t.test('different tables never merge; order is pollMs, then coil/discrete/holding/input, then start', async (t) => {
  const { requests } = plan({
    pollGroups: { fast: 100 },
    points: [
      { name: 'in', table: 'input', address: 0 },
      { name: 'hr', table: 'holding', address: 1 },
      { name: 'di', table: 'discrete', address: 0, type: 'bool' },
      { name: 'co', table: 'coil', address: 1, type: 'bool' },
      { name: 'fast_hr', table: 'holding', address: 5, group: 'fast' },
    ],
  });
  t.same(shape(requests), [
    ['holding', 5, 1, 100, 'fast_hr'],
    ['coil', 1, 1, 1000, 'co'],
    ['discrete', 0, 1, 1000, 'di'],
    ['holding', 1, 1, 1000, 'hr'],
    ['input', 0, 1, 1000, 'in'],
  ]);
});

t.test('different poll intervals never merge, even when adjacent', async (t) => {
  const { requests } = plan({
    points: [
      { name: 'slow', table: 'holding', address: 0, pollMs: 5000 },
      { name: 'fast', table: 'holding', address: 1, pollMs: 250 },
      { name: 'dflt', table: 'holding', address: 2 },
    ],
  });
  t.same(shape(requests), [
    ['holding', 1, 1, 250, 'fast'],
    ['holding', 2, 1, 1000, 'dflt'],
    ['holding', 0, 1, 5000, 'slow'],
  ]);
});

t.test('overlapping points share registers even with maxGap 0', async (t) => {
  const { requests } = plan({
    maxGap: 0,
    points: [
      { name: 'alarm', table: 'holding', address: 10, type: 'bit', bit: 3 },
      { name: 'status', table: 'holding', address: 10 },
      { name: 'running', table: 'holding', address: 10, type: 'bit', bit: 0 },
      { name: 'energy', table: 'holding', address: 11, type: 'uint32' },
      { name: 'energy_lo', table: 'holding', address: 12 },
    ],
  });
  t.same(shape(requests), [['holding', 10, 3, 1000, 'status,running,alarm,energy,energy_lo']], 'bits sorted by bit index');
});

t.test('a point wider than one request is an error naming it, its width and the limit', async (t) => {
  const msg = 'point "serial_no" is 125 registers wide, more than one request may read (maxRegistersPerRequest: 32)';
  // The planner refuses it...
  const dev = device({ points: [{ name: 'serial_no', table: 'holding', address: 0, type: 'string', length: 125 }] });
  t.throws(() => planRequests(resolvePoints(dev).points, { ...dev, maxRegistersPerRequest: 32 }), { message: msg });
  // ...and so does config validation, with the position of the device's modbus section.
  t.throws(
    () =>
      device({ maxRegistersPerRequest: 32, points: [{ name: 'serial_no', table: 'holding', address: 0, type: 'string', length: 125 }] }),
    {
      message: `test.yaml:13:7 devices[0].modbus: ${msg}`,
    },
  );
});

t.test('planWithoutCoalescing gives one request per point', async (t) => {
  const { points, requests } = plan({ points: regs(5, 0, { type: 'uint32' }).map((p, i) => ({ ...p, address: i * 2 })) });
  t.equal(requests.length, 1);
  const base = planWithoutCoalescing(points);
  t.same(
    base.map((r) => [r.start, r.count, r.points.length]),
    [0, 2, 4, 6, 8].map((a) => [a, 2, 1]),
  );
});

t.test('formatPlan: aligned lines with FC, ranges, counts and unused registers', async (t) => {
  const { dev, requests } = plan({
    unit: 7,
    maxGap: 4,
    pollGroups: { energy: 60000 },
    points: [
      { name: 'voltage_l1', table: 'holding', address: 0, type: 'float32' },
      { name: 'voltage_l2', table: 'holding', address: 2, type: 'float32' },
      { name: 'current_l1', table: 'holding', address: 8, type: 'float32' },
      { name: 'breaker', table: 'coil', address: 3, type: 'bool' },
      { name: 'energy_total', table: 'input', address: 100, type: 'uint64', group: 'energy' },
    ],
  });
  t.equal(
    formatPlan('meter-1', dev.unit, dev.line, requests),
    [
      'meter-1 (unit 7 on plant-tcp): 3 requests for 5 points',
      '  every  1000 ms  FC1 coil     3        (1 coil)                  breaker',
      '  every  1000 ms  FC3 holding  0-9      (10 registers, 4 unused)  voltage_l1, voltage_l2, current_l1',
      '  every 60000 ms  FC4 input    100-103  (4 registers)             energy_total',
    ].join('\n'),
  );
  const modicon = plan({ addressing: 'modicon', points: [{ name: 'p', table: 'holding', address: 40001, type: 'float32' }] });
  t.equal(
    formatPlan('m', 1, 'plant-tcp', modicon.requests, 'modicon'),
    'm (unit 1 on plant-tcp): 1 request for 1 point (wire addresses; modicon in [ ])\n' +
      '  every 1000 ms  FC3 holding  0-1 [40001-40002]  (2 registers)  p',
  );
  const oneBased = plan({ addressing: 'one-based', points: [{ name: 'x', table: 'input', address: 10 }] });
  t.match(formatPlan('m', 1, 'plant-tcp', oneBased.requests, 'one-based'), /FC4 input {2}9 \[10\] {2}\(1 register\) {2}x$/);
});

// --- the CLI, as a child process ---

t.test('outpost modbus plan', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-modbus-plan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    siteYaml([
      {
        id: 'meter-1',
        zone: 'hall',
        modbus: {
          line: 'plant-tcp',
          unit: 1,
          points: [
            { name: 'voltage_l1', table: 'holding', address: 0, type: 'float32' },
            { name: 'voltage_l2', table: 'holding', address: 2, type: 'float32' },
            { name: 'current_l1', table: 'holding', address: 8, type: 'float32' },
            { name: 'energy', table: 'input', address: 0, type: 'uint32', pollMs: 60000 },
          ],
        },
      },
      { id: 'no-modbus', zone: 'hall' },
      {
        id: 'relay-2',
        zone: 'hall',
        modbus: {
          line: 'plant-tcp',
          unit: 2,
          addressing: 'modicon',
          maxGap: 0,
          points: [
            { name: 'k1', table: 'coil', address: 1, type: 'bool', writable: true },
            { name: 'k2', table: 'coil', address: 2, type: 'bool', writable: true },
            { name: 'k4', table: 'coil', address: 4, type: 'bool', writable: true },
            { name: 'fault', table: 'discrete', address: 10001, type: 'bool' },
          ],
        },
      },
    ]),
  );
  const r = await outpost(['modbus', 'plan', '--config', file]);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines[0], 'meter-1 (unit 1 on plant-tcp): 2 requests for 4 points');
  t.match(lines[1], /every {2}1000 ms {2}FC3 holding {2}0-9 +\(10 registers, 4 unused\) {2}voltage_l1, voltage_l2, current_l1$/);
  t.match(lines[2], /every 60000 ms {2}FC4 input {4}0-1 +\(2 registers\) +energy$/);
  t.equal(lines[4], 'relay-2 (unit 2 on plant-tcp): 3 requests for 4 points (wire addresses; modicon in [ ])');
  t.match(lines[5], /FC1 coil {6}0-1 \[00001-00002\] +\(2 coils\) +k1, k2$/);
  t.match(lines[6], /FC1 coil {6}3 \[00004\] +\(1 coil\) +k4$/);
  t.match(lines[7], /FC2 discrete {2}0 \[10001\] +\(1 input\) +fault$/);
  t.equal(lines.at(-1), '2 devices, 8 points, 5 requests per cycle-set (uncoalesced: 8)');
  t.notMatch(r.stdout, /no-modbus/);

  const one = await outpost(['modbus', 'plan', '-c', file, '--device', 'relay-2', '--json']);
  t.equal(one.code, 0, one.stderr);
  const json = JSON.parse(one.stdout) as { devices: { device: string; requests: { functionCode: number }[] }[]; totals: unknown };
  t.same(
    json.devices.map((d) => [d.device, d.requests.map((q) => q.functionCode)]),
    [['relay-2', [1, 1, 2]]],
  );
  t.same(json.totals, { devices: 1, points: 4, requests: 3, uncoalesced: 4 });

  const nope = await outpost(['modbus', 'plan', '--config', file, '--device', 'nope']);
  t.equal(nope.code, 1);
  t.equal(nope.stderr.trim(), 'outpost: unknown device "nope" (Modbus devices: meter-1, relay-2)');

  writeFileSync(file, siteYaml([{ id: 'no-modbus', zone: 'hall' }]));
  const none = await outpost(['modbus', 'plan', '--config', file]);
  t.equal(none.code, 0);
  t.match(none.stdout, /no Modbus devices/);
});
