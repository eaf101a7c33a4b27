// The LoRaWAN driver's own metrics. Refused input (bad datagrams, MIC failures, replays,
// codec failures) is counted in the shared outpost_rejects_total{driver="lorawan",reason}.
import type { MetricFactory } from '../../gateway/kernel/metrics.js';

export function lorawanMetrics(f: MetricFactory) {
  return {
    lorawanDatagrams: f.counter('outpost_lorawan_datagrams_total', 'GWMP datagrams received from packet forwarders, by type', ['type']),
    lorawanUplinks: f.counter('outpost_lorawan_uplinks_total', 'Data uplinks, by outcome (stored, duplicate copy, retransmission)', [
      'result',
    ]),
    lorawanJoins: f.counter('outpost_lorawan_joins_total', 'OTAA join requests, by outcome', ['result']),
    lorawanDownlinks: f.counter('outpost_lorawan_downlinks_total', 'Downlinks sent to a forwarder, by kind and receive window', [
      'kind',
      'window',
    ]),
    lorawanTxAcks: f.counter('outpost_lorawan_tx_acks_total', 'TX_ACK answers from forwarders, by error (NONE = sent)', ['error']),
    lorawanGatewaysOnline: f.gauge('outpost_lorawan_gateways_online', 'Packet forwarders heard within gatewayOfflineAfterS'),
    lorawanCodecSeconds: f.histogram(
      'outpost_lorawan_codec_seconds',
      'Payload codec time per uplink',
      [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
    ),
  };
}
export type LorawanMetrics = ReturnType<typeof lorawanMetrics>;
