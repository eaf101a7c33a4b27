// Local lock control: the RBAC matrix (every role × door group × action), a complete
// access audit, a timed unlock that re-locks itself, an MQTT-driven lock, and a
// fail-secure shutdown — against a real Modbus peer and a real MQTT client.
import t, { type Test } from 'tap';
import { hashPassword, newApiToken, sha256Hex } from '../gateway/kernel/secrets.js';
import { api, connect, endClient, removeDir, startGateway, waitFor } from './helpers/gateway.js';
import { startModbusPeer } from './helpers/modbus.js';

interface AccessEvent {
  type: string;
  subject: string;
  data: {
    lock: string;
    action: string;
    by: string | null;
    role: string | null;
    via: string;
    detail: string;
    seconds?: number;
    reason: string | null;
  };
}

const ROLES = {
  admin: { role: 'admin', doorGroups: [] },
  'op-lobby': { role: 'operator', doorGroups: ['lobby'] },
  'op-all': { role: 'operator', doorGroups: ['*'] },
  'op-none': { role: 'operator', doorGroups: [] },
  'viewer-lobby': { role: 'viewer', doorGroups: ['lobby'] },
} as const;
type Who = keyof typeof ROLES;

async function setup(t: Test) {
  const peer = await startModbusPeer();
  const tokens = Object.fromEntries(Object.keys(ROLES).map((k) => [k, newApiToken()])) as Record<Who, string>;
  const g = await startGateway({
    http: {
      tokens: Object.entries(ROLES).map(([name, r]) => ({
        name,
        role: r.role,
        doorGroups: [...r.doorGroups],
        sha256: sha256Hex(tokens[name as Who]),
      })),
    },
    drivers: {
      modbus: { enabled: true, lines: [{ id: 'bus', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0 }] },
    },
    devices: [
      {
        id: 'door-ctl',
        zone: 'lobby',
        modbus: {
          line: 'bus',
          pollMs: 60000,
          points: [
            { name: 'relay1', table: 'coil', address: 1, type: 'bool', writable: true },
            { name: 'relay2', table: 'coil', address: 2, type: 'bool', writable: true },
          ],
        },
      },
      { id: 'gate-ctl', zone: 'yard', mqtt: { username: 'gate-ctl', passwordHash: await hashPassword('gate-pw') } },
    ],
    locks: [
      { id: 'lobby-door', group: 'lobby', device: 'door-ctl', modbusPoint: 'relay1', unlockSeconds: 0 },
      { id: 'server-room', group: 'secure', device: 'door-ctl', modbusPoint: 'relay2', unlockedWhen: 'off', unlockSeconds: 0 },
      { id: 'yard-gate', group: 'lobby', device: 'gate-ctl' },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    await peer.close();
    removeDir(g.dir);
  });
  const call = (who: Who | 'none' | 'bad', lock: string, action: string, body?: Record<string, unknown>) =>
    api<{ granted: boolean; detail: string }>(
      g.httpUrl,
      `/api/v1/locks/${lock}/${action}`,
      who === 'none' ? undefined : who === 'bad' ? 'opt_nope' : tokens[who],
      {
        method: 'POST',
        body: body ?? {},
      },
    );
  const access = async () =>
    (await api<{ events: AccessEvent[] }>(g.httpUrl, '/api/v1/events?type=access.*&limit=5000', tokens.admin)).body.events.reverse();
  return { g, peer, tokens, call, access };
}

t.test('RBAC matrix: every role × door group × action, each attempt audited', async (t) => {
  const { peer, call, access } = await setup(t);
  const expected: Record<Who, Record<'lobby-door' | 'server-room', boolean>> = {
    admin: { 'lobby-door': true, 'server-room': true },
    'op-lobby': { 'lobby-door': true, 'server-room': false },
    'op-all': { 'lobby-door': true, 'server-room': true },
    'op-none': { 'lobby-door': false, 'server-room': false },
    'viewer-lobby': { 'lobby-door': false, 'server-room': false },
  };
  let attempts = 0;
  let grants = 0;
  for (const who of Object.keys(ROLES) as Who[]) {
    for (const lock of ['lobby-door', 'server-room'] as const) {
      for (const action of ['unlock', 'lock'] as const) {
        // Start from the opposite state so a granted action visibly changes the coil.
        const coil = lock === 'lobby-door' ? 1 : 2;
        const unlockedCoil = lock === 'lobby-door';
        peer.coils[coil] = action === 'unlock' ? !unlockedCoil : unlockedCoil;
        const res = await call(who, lock, action);
        attempts++;
        const ok = expected[who][lock];
        if (ok) grants++;
        t.equal(res.status, ok ? 200 : 403, `${who} ${action} ${lock}`);
        t.equal(peer.coils[coil], ok === (action === 'unlock') ? unlockedCoil : !unlockedCoil, `${who} ${action} ${lock}: door state`);
      }
    }
  }
  for (const who of ['none', 'bad'] as const) {
    const res = await call(who, 'lobby-door', 'unlock');
    attempts++;
    t.equal(res.status, 401);
  }
  const events = await waitFor(async () => {
    const ev = await access();
    return ev.length >= attempts ? ev : undefined;
  }, 'all attempts audited');
  t.equal(events.length, attempts, 'one audit event per attempt');
  const denied = events.filter((e) => e.type === 'access.denied');
  t.equal(events.filter((e) => e.type === 'access.granted').length, grants, `${grants} granted`);
  t.equal(denied.length, attempts - grants);
  t.match(
    events.find((e) => e.data.by === 'op-lobby' && e.subject === 'server-room'),
    { type: 'access.denied', data: { action: 'unlock', role: 'operator', via: 'api', detail: /not allowed for door group "secure"/ } },
  );
  t.match(
    events.filter((e) => e.data.by === null),
    [{ data: { detail: 'missing bearer token' } }, { data: { detail: 'invalid token' } }],
    'unauthenticated attempts too',
  );
});

t.test('timed unlock re-locks by itself; MQTT locks get commands; shutdown locks doors still open', async (t) => {
  const { g, peer, tokens, call, access } = await setup(t);
  let res = await call('op-lobby', 'lobby-door', 'unlock', { seconds: 1, reason: 'delivery' });
  t.equal(res.status, 200);
  t.equal(peer.coils[1], true, 'unlocked');
  const lock = (await api<{ state: string; relockAt: string | null }>(g.httpUrl, '/api/v1/locks/lobby-door', tokens['viewer-lobby'])).body;
  t.equal(lock.state, 'unlocked');
  t.ok(lock.relockAt, 'relock time shown');
  await waitFor(() => (peer.coils[1] === false ? true : undefined), 're-locked after 1 s', 3000);
  // The audit event is committed just after the coil write: wait for it, too.
  const relock = await waitFor(async () => (await access()).find((e) => e.data.via === 'relock'), 're-lock audited', 3000);
  t.match(relock, { type: 'access.granted', data: { action: 'lock', by: 'timer', reason: 'timed unlock of 1 s ended' } });

  res = await call('op-lobby', 'lobby-door', 'unlock', { seconds: 99999 });
  t.equal(res.status, 400, 'longer than maxUnlockSeconds');

  const gate = await connect(g.mqttPort, { username: 'gate-ctl', password: 'gate-pw' });
  t.teardown(() => endClient(gate));
  await gate.subscribeAsync('devices/test/yard/gate-ctl/command', { qos: 1 });
  const cmd = new Promise<{ action: string; args: { seconds: number } }>((resolve) =>
    gate.once('message', (_t, p) => resolve(JSON.parse(p.toString()) as { action: string; args: { seconds: number } })),
  );
  res = await call('op-all', 'yard-gate', 'unlock', { seconds: 30 });
  t.equal(res.status, 200);
  t.match(await cmd, { action: 'unlock', args: { seconds: 30 } }, 'the gate controller got the unlock command');

  await call('admin', 'lobby-door', 'unlock', { seconds: 60 });
  t.equal(peer.coils[1], true);
  await g.stop();
  t.equal(peer.coils[1], false, 'fail-secure: a door in a timed unlock is locked when the gateway stops');
});
