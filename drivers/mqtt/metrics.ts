// The MQTT driver's own metrics (received readings, rejects and auth failures are counted
// by the gateway for every driver).
import type { MetricFactory } from '../../gateway/kernel/metrics.js';

export function mqttMetrics(f: MetricFactory) {
  return {
    mqttClients: f.gauge('outpost_mqtt_clients', 'Connected MQTT clients'),
    mqttRefusedConnections: f.counter('outpost_mqtt_refused_connections_total', 'MQTT connections refused by a limit, by reason', [
      'reason',
    ]),
  };
}
export type MqttMetrics = ReturnType<typeof mqttMetrics>;
