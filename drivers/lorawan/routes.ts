// LoRaWAN routes: the site's packet forwarders and devices as the network server sees them.
import type { FastifyInstance } from 'fastify';
import type {} from '../../gateway/contract/api.js';
import type { LorawanDriver } from './driver.js';

export function registerLorawanRoutes(app: FastifyInstance, driver: () => LorawanDriver | undefined): void {
  app.get('/api/v1/lorawan/gateways', { config: { minRole: 'viewer' } }, async () => ({ gateways: driver()?.gatewayList() ?? [] }));
  app.get('/api/v1/lorawan/devices', { config: { minRole: 'viewer' } }, async () => ({ devices: driver()?.deviceList() ?? [] }));
}
