// `outpost lorawan gateways | devices | downlink`: the running network server, from the
// installer's shell (through the local API, like `outpost status`).
import type { Command } from 'commander';
import type { ApiCliOptions, CliHooks } from '../../gateway/contract/descriptor.js';
import type { GatewayView } from './gateways.js';
import type { LorawanDeviceView } from './driver.js';

type Json = { json?: boolean };

export function registerLorawanCli(program: Command, hooks: CliHooks<unknown, unknown>): void {
  const lora = program.command('lorawan').description('the LoRaWAN network server: gateways, devices, downlinks');
  hooks
    .apiOptions(lora.command('gateways').description('packet forwarders: online, last seen, last statistics'))
    .option('--json', 'print JSON')
    .action(async (o: ApiCliOptions & Json) => {
      const { gateways } = await hooks.api<{ gateways: GatewayView[] }>(o, '/api/v1/lorawan/gateways');
      if (o.json) return console.log(JSON.stringify(gateways, null, 2));
      for (const g of gateways) {
        const s = g.stat ? ` rxnb ${g.stat.rxnb ?? '-'} rxok ${g.stat.rxok ?? '-'} txnb ${g.stat.txnb ?? '-'}` : '';
        console.log(
          `${g.id} (${g.eui}) ${g.online ? 'online' : 'offline'}, last seen ${g.lastSeen ?? 'never'}, ${g.uplinks} uplinks, ${g.downlinks} downlinks${s}`,
        );
      }
    });
  hooks
    .apiOptions(lora.command('devices').description('LoRaWAN devices: joined, last uplink, frame counter, RSSI/SNR'))
    .option('--json', 'print JSON')
    .action(async (o: ApiCliOptions & Json) => {
      const { devices } = await hooks.api<{ devices: LorawanDeviceView[] }>(o, '/api/v1/lorawan/devices');
      if (o.json) return console.log(JSON.stringify(devices, null, 2));
      for (const d of devices) {
        const radio = d.lastUplink
          ? `last uplink ${d.lastUplink} (FCnt ${d.fCntUp}, RSSI ${d.rssi}, SNR ${d.snr}, ${d.gateways} gateways)`
          : 'no uplink yet';
        console.log(
          `${d.id} ${d.devEui} ${d.joined ? `joined as ${d.devAddr}` : 'not joined'}, ${radio}, ${d.queuedDownlinks} downlinks queued`,
        );
      }
    });
  hooks
    .apiOptions(
      lora
        .command('downlink <device>')
        .description("queue a downlink for the device's next receive window")
        .option('--port <fPort>', 'FPort (1-223)', '1')
        .option('--hex <bytes>', 'payload as hex')
        .option('--data <json>', "an object for the profile codec's encodeDownlink")
        .option('--confirmed', 'ask the device to acknowledge')
        .option('--ttl <seconds>', 'drop it if not sent within this'),
    )
    .action(async (device: string, o: ApiCliOptions & { port: string; hex?: string; data?: string; confirmed?: boolean; ttl?: string }) => {
      const args = {
        fPort: Number(o.port),
        ...(o.hex !== undefined ? { hex: o.hex } : {}),
        ...(o.data !== undefined ? { data: JSON.parse(o.data) as unknown } : {}),
        ...(o.confirmed ? { confirmed: true } : {}),
        ...(o.ttl !== undefined ? { ttlSeconds: Number(o.ttl) } : {}),
      };
      const r = await hooks.api<{ ok: boolean; detail?: string }>(o, `/api/v1/devices/${encodeURIComponent(device)}/commands`, {
        method: 'POST',
        body: { action: 'downlink', args },
      });
      console.log(r.detail ?? (r.ok ? 'queued' : 'refused'));
    });
}
