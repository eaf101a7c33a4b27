// One Modbus line against a real peer: strict serialisation, writes ahead of queued
// polls, and fast failures with backoff when the endpoint is down.
import t from 'tap';
import { Metrics } from '../gateway/metrics.js';
import { buildReadPdu, buildWriteRegistersPdu } from '../drivers/modbus/frames.js';
import { ModbusLine } from '../drivers/modbus/line.js';
import type { ModbusLineConfig } from '../drivers/modbus/schema.js';
import { freePort } from './helpers/gateway.js';
import { startModbusPeer } from './helpers/modbus.js';
import { modbus } from '../drivers/modbus/index.js';

const tcp = (port: number): ModbusLineConfig => ({
  id: 'l',
  transport: 'tcp',
  host: '127.0.0.1',
  port,
  timeoutMs: 300,
  retries: 0,
  interFrameDelayMs: 0,
});

t.test('a write jumps ahead of queued polls; requests never overlap', async (t) => {
  const peer = await startModbusPeer();
  t.teardown(() => peer.close());
  const line = new ModbusLine(tcp(peer.port), new Metrics().of(modbus));
  t.teardown(() => line.close());
  const done: string[] = [];
  const polls = Array.from({ length: 20 }, (_, i) =>
    line.request(1, buildReadPdu('holding', i, 2), 'poll').then(() => done.push(`poll${i}`)),
  );
  // Queued after 20 polls, but only the poll already on the wire may finish before it.
  const write = line.request(1, buildWriteRegistersPdu(100, Buffer.from([0x12, 0x34])), 'write').then(() => done.push('write'));
  await Promise.all([...polls, write]);
  t.ok(done.indexOf('write') <= 1, `write finished at position ${done.indexOf('write')} of ${done.length}`);
  t.same(
    done.filter((d) => d !== 'write'),
    Array.from({ length: 20 }, (_, i) => `poll${i}`),
    'polls keep their order',
  );
  t.equal(peer.holding[100], 0x1234);
});

t.test('a closed endpoint fails fast and is retried with backoff, not per request', async (t) => {
  const port = await freePort(); // nothing listens here
  const metrics = new Metrics();
  const line = new ModbusLine(tcp(port), metrics.of(modbus));
  t.teardown(() => line.close());
  const started = performance.now();
  await t.rejects(line.request(1, buildReadPdu('holding', 0, 1), 'poll'), { message: /ECONNREFUSED/ });
  await t.rejects(line.request(1, buildReadPdu('holding', 0, 1), 'poll'), { message: /not connected \(next attempt in/ });
  t.ok(performance.now() - started < 200, 'both failures are immediate');
  const text = await metrics.registry.metrics();
  t.match(text, /outpost_modbus_requests_total\{line="l",result="connect_error"\} 2/);
});
