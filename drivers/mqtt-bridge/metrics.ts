// The bridge's own metrics. Refused input is also counted in the shared
// outpost_rejects_total{driver="bridge",reason}.
import type { MetricFactory } from '../../gateway/kernel/metrics.js';

export function bridgeMetrics(f: MetricFactory) {
  return {
    bridgeMessages: f.counter(
      'outpost_bridge_messages_total',
      'Messages from bridged brokers, by broker and result (stored, offered, unknown_device, rejected, store_failed)',
      ['broker', 'result'],
    ),
    bridgeConnected: f.gauge('outpost_bridge_broker_up', '1 while connected and subscribed to the broker', ['broker']),
  };
}
export type BridgeMetrics = ReturnType<typeof bridgeMetrics>;
