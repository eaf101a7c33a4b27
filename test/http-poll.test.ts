// HTTP polling against a real HTTP server on 127.0.0.1: conditional requests (ETag), a
// text page read by patterns, a device that fails and comes back (device.offline /
// device.online), slow answers and hangs cut by the timeout, garbage bodies counted; and a
// write command sent as an HTTP request to a relay.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { api, metricValue, removeDir, startGateway, tempDir, waitFor, type TestGateway } from './helpers/gateway.js';

interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function deviceServer(t: Test) {
  const seen: Seen[] = [];
  const state = { meter: 1, flakyFailures: 3 };
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      seen.push({ path, headers: req.headers, body });
      if (path === '/meter') {
        const etag = `"v${state.meter}"`;
        if (req.headers['if-none-match'] === etag) return res.writeHead(304).end();
        return res.writeHead(200, { etag, 'content-type': 'application/json' }).end(JSON.stringify({ energy: state.meter * 10 }));
      }
      if (path === '/text') return res.writeHead(200, { 'content-type': 'text/plain' }).end('Voltage: 231.5 V\nStatus: OK\n');
      if (path === '/flaky') {
        if (state.flakyFailures-- > 0) return res.writeHead(500).end('busy');
        return res.writeHead(200).end('{"ok": 1}');
      }
      if (path === '/garbage') return res.writeHead(200).end('<html>not json');
      if (path === '/hang') return; // never answers
      if (path.startsWith('/relay')) return res.writeHead(200).end('done');
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, state };
}

const poll = (url: string, extra: Record<string, unknown> = {}) => ({
  url,
  intervalS: 0.2,
  timeoutMs: 400,
  offlineAfterFailures: 3,
  ...extra,
});

async function readings(g: TestGateway, device: string): Promise<unknown[][]> {
  const q = `SELECT point, coalesce(text, value::VARCHAR) FROM readings WHERE device = '${device}' ORDER BY seq`;
  return (await api<{ rows: unknown[][] }>(g.httpUrl, '/api/v1/query', g.adminToken, { method: 'POST', body: { sql: q } })).body.rows;
}
const reject = async (g: TestGateway, reason: string) =>
  metricValue((await api<string>(g.httpUrl, '/metrics')).body, 'outpost_rejects_total', { driver: 'http', reason });

t.test('polling: ETag, text patterns, failures and recovery, timeouts, garbage; writes as requests', async (t) => {
  const dev = await deviceServer(t);
  process.env.OUTPOST_TEST_RELAY_TOKEN = 'relay-secret';
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const g = await startGateway(
    {
      dataDir: dir,
      drivers: { http: { enabled: true } },
      devices: [
        { id: 'meter', zone: 'z', http: { poll: poll(`${dev.url}/meter`) } },
        {
          id: 'panel',
          zone: 'z',
          http: {
            poll: poll(`${dev.url}/text`, { format: 'text', patterns: { voltage: 'Voltage: ([\\d.]+)', status: 'Status: (\\w+)' } }),
          },
        },
        { id: 'flaky', zone: 'z', http: { poll: poll(`${dev.url}/flaky`) } },
        { id: 'junk', zone: 'z', http: { poll: poll(`${dev.url}/garbage`, { intervalS: 5 }) } },
        { id: 'stuck', zone: 'z', http: { poll: poll(`${dev.url}/hang`, { intervalS: 5 }) } },
        {
          id: 'relay',
          zone: 'z',
          http: {
            write: { url: `${dev.url}/relay/{{point}}`, body: '{"on": {{value}}}', auth: { bearerEnv: 'OUTPOST_TEST_RELAY_TOKEN' } },
          },
        },
      ],
    },
    dir,
  );
  t.teardown(() => g.stop());

  await waitFor(() => dev.seen.filter((s) => s.path === '/meter').length >= 4 || undefined, 'several meter polls');
  t.same(await readings(g, 'meter'), [['energy', '10.0']], 'unchanged page (304): stored once');
  t.ok(
    dev.seen.some((s) => s.path === '/meter' && s.headers['if-none-match'] === '"v1"'),
    'the ETag was sent back',
  );
  dev.state.meter = 2;
  await waitFor(async () => ((await readings(g, 'meter')).length === 2 ? true : undefined), 'the changed page stored');

  await waitFor(async () => ((await readings(g, 'panel')).length >= 2 ? true : undefined), 'the text page read');
  t.same((await readings(g, 'panel')).slice(0, 2), [
    ['voltage', '231.5'],
    ['status', 'OK'],
  ]);

  const events = async () =>
    (await api<{ events: { type: string; subject: string }[] }>(g.httpUrl, '/api/v1/events?limit=100', g.adminToken)).body.events
      .filter((e) => e.subject === 'flaky')
      .map((e) => e.type);
  await waitFor(async () => ((await events()).length >= 2 ? true : undefined), 'offline then online', 8000);
  t.same((await events()).sort(), ['device.offline', 'device.online'], 'three failures: offline; then back online');
  t.ok((await reject(g, 'poll_http_status')) >= 3, 'HTTP 500s counted');

  await waitFor(async () => ((await reject(g, 'poll_invalid_json')) >= 1 ? true : undefined), 'garbage counted');
  await waitFor(async () => ((await reject(g, 'poll_timeout')) >= 1 ? true : undefined), 'a hang cut by the timeout', 3000);

  const w = await api<{ ok: boolean; detail: string }>(g.httpUrl, '/api/v1/devices/relay/commands', g.adminToken, {
    method: 'POST',
    body: { action: 'write', args: { point: 'ch1', value: true } },
  });
  t.equal(w.status, 202, JSON.stringify(w.body));
  const sent = dev.seen.find((s) => s.path === '/relay/ch1');
  t.match(
    sent,
    { body: '{"on": true}', headers: { authorization: 'Bearer relay-secret', 'content-type': 'application/json' } },
    'the write template filled in',
  );
});
