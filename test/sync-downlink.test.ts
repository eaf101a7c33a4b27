// Cloud → gateway commands and desired config, over the real cloud API: an unlock queued
// by the central office reaches the door through the same RBAC and audit as a local call.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { STAGED_CONFIG_FILE } from '../gateway/cloud-commands.js';
import { office, startCloud } from './helpers/cloud.js';
import { api, removeDir, waitFor } from './helpers/gateway.js';
import { startModbusPeer } from './helpers/modbus.js';
import { syncedGateway } from './helpers/sync.js';

interface CommandRow {
  id: string;
  status: string;
  detail: string | null;
}
interface AuditEvent {
  type: string;
  subject: string;
  data: { by: string; via: string; action: string; detail: string };
}

t.test('office commands: unlock an allowed door, refuse another door group, write a point; all audited', async (t) => {
  const c = await startCloud();
  const peer = await startModbusPeer();
  peer.coils[0] = peer.coils[1] = false; // locked
  const g = await syncedGateway(c, {
    sync: { commands: { pollMs: 200, role: 'operator', doorGroups: ['lobby'] } },
    extra: {
      drivers: {
        modbus: { enabled: true, lines: [{ id: 'bus', transport: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 300, retries: 0 }] },
      },
      devices: [
        {
          id: 'doors',
          zone: 'entrance',
          modbus: {
            line: 'bus',
            pollMs: 60000,
            points: [
              { name: 'front', table: 'coil', address: 0, type: 'bool', writable: true },
              { name: 'vault', table: 'coil', address: 1, type: 'bool', writable: true },
              { name: 'fan', table: 'coil', address: 2, type: 'bool', writable: true },
            ],
          },
        },
      ],
      locks: [
        { id: 'front-door', group: 'lobby', device: 'doors', modbusPoint: 'front', unlockSeconds: 0 },
        { id: 'vault-door', group: 'vault', device: 'doors', modbusPoint: 'vault', unlockSeconds: 0 },
      ],
    },
  });
  t.teardown(async () => {
    await g.stop();
    await c.stop();
    await peer.close();
    removeDir(g.dir);
  });
  const queue = async (kind: string, args: Record<string, unknown>) => {
    const r = await office<{ id: string }>(c.url, c.adminToken, '/api/v1/gateways/gw-1/commands', { method: 'POST', body: { kind, args } });
    t.equal(r.status, 201, `queued ${kind}`);
    return r.body.id;
  };
  const unlock = await queue('lock', { lock: 'front-door', action: 'unlock' });
  const vault = await queue('lock', { lock: 'vault-door', action: 'unlock' });
  const fan = await queue('write', { device: 'doors', point: 'fan', value: true });

  const done = await waitFor(
    async () => {
      const list = (await office<{ commands: CommandRow[] }>(c.url, c.adminToken, '/api/v1/gateways/gw-1/commands')).body.commands;
      return list.every((x) => x.status === 'done' || x.status === 'failed') && list.length === 3 ? list : undefined;
    },
    'all three commands acknowledged',
    10000,
  );
  const byId = new Map(done.map((x) => [x.id, x]));
  t.equal(byId.get(unlock)?.status, 'done');
  t.equal(peer.coils[0], true, 'the front door was unlocked');
  t.equal(byId.get(vault)?.status, 'failed');
  t.match(byId.get(vault)?.detail, /door group "vault"/);
  t.equal(peer.coils[1], false, 'the vault stayed locked');
  t.equal(byId.get(fan)?.status, 'done');
  t.equal(peer.coils[2], true, 'the point write reached the device');

  const audit = (await api<{ events: AuditEvent[] }>(g.httpUrl, '/api/v1/events?type=access.*&limit=100', g.adminToken)).body.events;
  const granted = audit.find((e) => e.type === 'access.granted' && e.subject === 'front-door');
  const denied = audit.find((e) => e.type === 'access.denied' && e.subject === 'vault-door');
  t.match(
    granted?.data,
    { by: 'cloud:office:generated-admin', via: 'cloud', action: 'unlock' },
    'granted unlock audited with the office user behind it',
  );
  t.match(denied?.data, { via: 'cloud', action: 'unlock' }, 'refusal audited too');
  // The audit events travel upstream in the priority stream.
  await waitFor(async () => {
    const ev = (await office<{ events: { type: string }[] }>(c.url, c.adminToken, '/api/v1/events?gateway=gw-1&type=access.*')).body.events;
    return ev.length >= 2 ? true : undefined;
  }, 'audit at the cloud');
});

t.test('desired config: a valid one is staged and acknowledged', async (t) => {
  const c = await startCloud();
  const g = await syncedGateway(c);
  t.teardown(async () => {
    await g.stop();
    await c.stop();
    removeDir(g.dir);
  });
  const yaml = stringify({ site: 'test', timezone: 'Europe/Berlin' });
  const put = await office<{ version: number }>(c.url, c.adminToken, '/api/v1/gateways/gw-1/config', { method: 'PUT', body: { yaml } });
  t.equal(put.status, 200);
  const staged = await waitFor(
    () => {
      try {
        return readFileSync(join(g.dir, STAGED_CONFIG_FILE), 'utf8');
      } catch {
        return undefined;
      }
    },
    'config staged',
    10000,
  );
  t.match(staged, new RegExp(`# desired config version ${put.body.version} from the cloud\\n`));
  t.match(staged, /timezone: Europe\/Berlin/);
});
