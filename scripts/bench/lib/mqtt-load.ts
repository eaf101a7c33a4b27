// MQTT load generators (mqtt.js clients in the bench process). QoS1 keeps a fixed window of
// unacknowledged publishes per client, so PUBACK latency is not inflated by an unbounded
// client-side queue; QoS0 has no acks, so it stops writing while the socket wants a drain,
// which keeps both processes' memory bounded.
import mqtt, { type MqttClient } from 'mqtt';
import { LOOPBACK } from './procs.js';

/** messages: QoS1 acknowledged, QoS0 handed to the socket; failed and latenciesMs (publish→PUBACK): QoS1 only. */
export type PublishResult = { messages: number; failed: number; latenciesMs: number[] };
export type Load = { topic: string; payloads: readonly Buffer[]; deadline: number; maxMessages: number };

export async function connectClient(port: number, clientId: string): Promise<MqttClient> {
  // reconnectPeriod 0: a lost connection is a bench failure, not something to hide.
  const client = mqtt.connect({ host: LOOPBACK, port, clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5_000, keepalive: 60 });
  try {
    await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject).once('close', reject));
  } catch (err) {
    client.end(true);
    throw new Error(`MQTT connection to port ${port} failed before CONNACK`, { cause: err });
  }
  return client;
}

export async function endClient(client: MqttClient): Promise<void> {
  await Promise.race([client.endAsync(false), new Promise((r) => setTimeout(r, 2_000))]).catch(() => undefined);
  if (!client.disconnected) client.end(true);
}

/** QoS1 with `window` publishes in flight; a new one goes out as each PUBACK arrives; PUBACKs get 15 s after the deadline. */
export function runQos1(client: MqttClient, opts: Load & { window: number }): Promise<PublishResult> {
  const result: PublishResult = { messages: 0, failed: 0, latenciesMs: [] };
  let [inflight, sent, stopped, finished] = [0, 0, false, false];
  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      [finished, stopped] = [true, true];
      clearTimeout(drainTimer);
      client.off('close', finish);
      result.failed += inflight;
      resolve(result);
    };
    client.once('close', finish);
    const more = () => !stopped && sent < opts.maxMessages && performance.now() < opts.deadline;
    const pump = () => {
      while (!finished && inflight < opts.window && more()) send();
      if (finished || more()) return;
      stopped = true;
      if (inflight === 0) finish();
      else drainTimer ??= setTimeout(finish, 15_000);
    };
    const send = () => {
      const t0 = performance.now();
      inflight++;
      client.publish(opts.topic, opts.payloads[sent++ % opts.payloads.length], { qos: 1 }, (err) => {
        if (finished) return; // counted as failed when the drain timed out
        inflight--;
        if (err) {
          result.failed++;
          stopped = true; // the connection is going: do not spin on it
        } else {
          result.messages++;
          result.latenciesMs.push(performance.now() - t0);
        }
        setImmediate(pump); // PUBACK callbacks can arrive in one tick for many messages: refill on the next
      });
    };
    pump();
  });
}

/** QoS0 as fast as the socket takes it (64 publishes a turn), pausing whenever the stream asks for a drain. */
export async function runQos0(client: MqttClient, opts: Load): Promise<PublishResult> {
  const result: PublishResult = { messages: 0, failed: 0, latenciesMs: [] };
  const stream = client.stream;
  while (client.connected && result.messages < opts.maxMessages && performance.now() < opts.deadline) {
    for (let i = 0; i < 64 && result.messages < opts.maxMessages && !stream.writableNeedDrain; i++) {
      client.publish(opts.topic, opts.payloads[result.messages++ % opts.payloads.length], { qos: 0 });
    }
    if (!stream.writableNeedDrain) await new Promise((r) => setImmediate(r));
    else {
      // Until the drain, the deadline or the connection's end, whichever comes first.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          stream.off('drain', done);
          client.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, opts.deadline - performance.now()));
        stream.once('drain', done);
        client.once('close', done);
      });
    }
  }
  return result;
}
