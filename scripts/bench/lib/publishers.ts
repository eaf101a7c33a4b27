// MQTT load generators (mqtt.js clients in the bench process). QoS1 keeps a fixed window
// of unacknowledged publishes per client, so PUBACK latency is not inflated by an
// unbounded client-side queue. QoS0 has no acks, so it is paced by the socket: it stops
// writing while the stream wants a drain, which keeps both processes' memory bounded.
import mqtt, { type MqttClient } from 'mqtt';

export interface PublishResult {
  /** QoS1: acknowledged publishes; QoS0: publishes handed to the socket. */
  messages: number;
  /** QoS1 only: publishes that got an error or no PUBACK before the drain timeout. */
  failed: number;
  /** QoS1 only: publish→PUBACK per message, ms. */
  latenciesMs: number[];
}

export interface LoadOptions {
  topic: string;
  payloads: readonly Buffer[];
  deadline: number;
  /** Hard cap on publishes per client, in case a run is far faster than expected. */
  maxMessages: number;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** How long publishers wait for outstanding PUBACKs after the deadline. */
const DRAIN_TIMEOUT_MS = 15_000;
/** QoS0 publishes written per turn before yielding to the event loop. */
const QOS0_CHUNK = 64;

export async function connectClient(port: number, clientId: string): Promise<MqttClient> {
  const client = mqtt.connect({
    host: '127.0.0.1',
    port,
    clientId,
    clean: true,
    reconnectPeriod: 0, // a lost connection is a bench failure, not something to hide
    connectTimeout: CONNECT_TIMEOUT_MS,
    keepalive: 60,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error(`MQTT connection to port ${port} closed before CONNACK`)));
    });
  } catch (err) {
    client.end(true);
    throw err;
  }
  return client;
}

export async function endClient(client: MqttClient): Promise<void> {
  await Promise.race([client.endAsync(false), new Promise((r) => setTimeout(r, 2_000))]).catch(() => undefined);
  if (!client.disconnected) client.end(true);
}

/** QoS1 with `window` publishes in flight; a new one goes out as each PUBACK arrives. */
export function runQos1(client: MqttClient, opts: LoadOptions & { window: number }): Promise<PublishResult> {
  const result: PublishResult = { messages: 0, failed: 0, latenciesMs: [] };
  let inflight = 0;
  let sent = 0;
  let stopped = false;
  let finished = false;
  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | null = null;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (drainTimer) clearTimeout(drainTimer);
      client.off('close', onClose);
      result.failed += inflight;
      inflight = 0;
      resolve(result);
    };
    const onClose = () => {
      stopped = true;
      finish();
    };
    client.once('close', onClose);
    const pump = () => {
      if (finished) return;
      while (!stopped && inflight < opts.window && sent < opts.maxMessages && performance.now() < opts.deadline) send();
      if (stopped || sent >= opts.maxMessages || performance.now() >= opts.deadline) {
        stopped = true;
        if (inflight === 0) finish();
        else drainTimer ??= setTimeout(finish, DRAIN_TIMEOUT_MS);
      }
    };
    const send = () => {
      const payload = opts.payloads[sent % opts.payloads.length]!;
      const t0 = performance.now();
      sent++;
      inflight++;
      client.publish(opts.topic, payload, { qos: 1 }, (err) => {
        if (finished) return; // counted as failed when the drain timed out
        inflight--;
        if (err) {
          result.failed++;
          stopped = true; // an error means the connection is going; do not spin on it
        } else {
          result.messages++;
          result.latenciesMs.push(performance.now() - t0);
        }
        // PUBACK callbacks can arrive in one tick for many messages: refill on the next.
        setImmediate(pump);
      });
    };
    pump();
  });
}

/** QoS0 as fast as the socket takes it, pausing whenever the stream asks for a drain. */
export async function runQos0(client: MqttClient, opts: LoadOptions): Promise<PublishResult> {
  const result: PublishResult = { messages: 0, failed: 0, latenciesMs: [] };
  const stream = client.stream;
  while (client.connected && result.messages < opts.maxMessages && performance.now() < opts.deadline) {
    for (let i = 0; i < QOS0_CHUNK && result.messages < opts.maxMessages; i++) {
      client.publish(opts.topic, opts.payloads[result.messages % opts.payloads.length]!, { qos: 0 });
      result.messages++;
      if (stream.writableNeedDrain) break;
    }
    if (stream.writableNeedDrain) await drainOrDeadline(client, opts.deadline);
    else await new Promise((r) => setImmediate(r));
  }
  return result;
}

function drainOrDeadline(client: MqttClient, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.stream.off('drain', done);
      client.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
    client.stream.once('drain', done);
    client.once('close', done);
  });
}
