// The Modbus TCP peer of the modbus and rules benches (devices of lib/mbap.ts), a CHILD process
// with its own core and event loop:
//   node peer.js poll <port>…   a device per port; `ready`; `stats` → {"requests", "registers"}
//   node peer.js actuator       a device on a free port; `ready <port>`; `w <fc> <address> <value> <t>` per coil write
// The actuator also publishes the rules bench's probes, from a loop that is otherwise idle (a
// publisher in the gateway's process could not publish during a gateway stall, and would miss the
// slow cases), on the clock that stamps the writes, <t> = performance.timeOrigin + now() in ms.
// stdin: `probe <mqttPort> <everyMs> <kinds> <topic>` (→ `probing`, then {"t<k>": seq + 1, "ts"} to
// topic, k = seq mod kinds, with `p <seq> <t>`), `unprobe` (→ `unprobed <count>`).
import type { MqttClient } from 'mqtt';
import { runChild, say } from './child-main.js';
import { device, startMbapServer, type Device, type MbapServer } from './mbap.js';
import { LOOPBACK } from './procs.js';

const now = () => performance.timeOrigin + performance.now();
const [mode, ...ports] = process.argv.slice(2);
const devices: Device[] = [];
const servers: MbapServer[] = [];
type Prober = { client: MqttClient; timer?: NodeJS.Timeout; seq: number };
let prober: Prober | null = null;

async function startProbes(rest: string): Promise<void> {
  const [port, everyMs, kinds] = rest.split(' ').map(Number);
  const topic = rest.split(' ')[3];
  if (prober || !Number.isInteger(port) || !(everyMs >= 1) || !(kinds >= 1) || !topic) return say('error bad probe command');
  const { connect } = await import('mqtt');
  const client = connect({ host: LOOPBACK, port, clientId: `bench-rules-probe-${process.pid}`, clean: true, reconnectPeriod: 0 });
  const p: Prober = { client, seq: 0 };
  prober = p;
  client.on('error', (err) => say(`error probe client: ${err.message}`));
  client.once('connect', () => {
    say('probing');
    p.timer = setInterval(() => {
      if (!client.connected) return;
      const seq = p.seq++;
      const payload = JSON.stringify({ [`t${seq % kinds}`]: seq + 1, ts: Date.now() });
      const t = now();
      client.publish(topic, payload, { qos: 0 });
      say(`p ${seq} ${t.toFixed(3)}`);
    }, everyMs);
  });
}

function stopProbes(): void {
  const p = prober;
  prober = null;
  clearInterval(p?.timer);
  if (!p) say('unprobed 0');
  else p.client.end(false, {}, () => say(`unprobed ${p.seq}`));
}

async function main() {
  if (mode === 'actuator') {
    devices.push(device((fc, address, value, t) => say(`w ${fc} ${address} ${value} ${t.toFixed(3)}`)));
    servers.push(await startMbapServer(0, devices[0].respond, now));
    say(`ready ${servers[0].port}`);
  } else {
    if (mode !== 'poll' || !ports.length || ports.some((p) => !(Number(p) > 0 && Number(p) < 65536)))
      throw new Error(`usage: peer.js poll <port>… | actuator`);
    for (const port of ports) {
      const d = device();
      devices.push(d);
      servers.push(await startMbapServer(Number(port), d.respond));
    }
    say('ready');
  }
  return {
    close: async () => {
      clearInterval(prober?.timer);
      prober?.client.end(true);
      await Promise.allSettled(servers.map((s) => s.close()));
    },
  };
}

runChild(main, {
  stats: () =>
    say('stats', {
      requests: devices.reduce((n, d) => n + d.totals.requests, 0),
      registers: devices.reduce((n, d) => n + d.totals.registers, 0),
    }),
  probe: (rest) => void startProbes(rest),
  unprobe: stopProbes,
});
