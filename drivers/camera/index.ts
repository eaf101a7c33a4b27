// The camera driver's descriptor: RTSP/ONVIF capture and YOLO detection (driver.ts), its
// config checks, the camera and snapshot API routes, and `outpost discover cameras`.
import type { CrossCheckProblem } from '../../gateway/kernel/yaml-config.js';
import { urlHasPassword } from '../../gateway/kernel/secret-files.js';
import type { DriverDescriptor } from '../../gateway/contract/descriptor.js';
import type { CameraDriver } from './driver.js';
import { cameraMetrics, type CameraMetrics } from './metrics.js';
import { registerCameraRoutes } from './routes.js';
import { CameraDeviceSchema, CameraDriverSchema } from './schema.js';

export const camera: DriverDescriptor<'camera', typeof CameraDriverSchema, typeof CameraDeviceSchema, CameraDriver, CameraMetrics> = {
  name: 'camera',
  config: CameraDriverSchema,
  device: CameraDeviceSchema,
  enabled: (c) => c.enabled,
  metrics: cameraMetrics,
  async create(section, site): Promise<CameraDriver> {
    const { CameraDriver } = await import('./driver.js');
    return new CameraDriver(section, site);
  },
  checks(_section, site) {
    const out: CrossCheckProblem[] = [];
    for (const d of site.devices) {
      const cam = d.config;
      const at = ['devices', d.index, 'camera'];
      if ((cam.rtsp === undefined) === (cam.onvif === undefined))
        out.push({ path: at, message: 'give exactly one source: rtsp (a URL) or onvif (a device that tells us its stream)' });
      if (cam.onvif?.password !== undefined && cam.onvif.passwordEnv !== undefined)
        out.push({ path: [...at, 'onvif'], message: 'give password or passwordEnv, not both' });
      const zoneIds = new Set<string>();
      cam.zones.forEach((z, k) => {
        if (zoneIds.has(z.id)) out.push({ path: [...at, 'zones', k, 'id'], message: `zone id "${z.id}" is used twice on this camera` });
        zoneIds.add(z.id);
      });
    }
    return out;
  },
  inlineSecrets(cam) {
    return [
      ...(cam.onvif?.password !== undefined ? ['onvif.password'] : []),
      ...(cam.rtsp !== undefined && urlHasPassword(cam.rtsp) ? ['rtsp'] : []),
    ];
  },
  routes: registerCameraRoutes,
  cli(_program, hooks) {
    hooks.discover
      .command('cameras')
      .description('WS-Discovery probe for ONVIF cameras; with credentials, also their device info, profiles and stream URIs')
      .option('--timeout <duration>', 'how long to wait for answers, e.g. 3s or 500ms', '3s')
      .option('--address <host[:port]>', 'probe this address (unicast, port 3702 by default) instead of the multicast group')
      .option('--username <user>', 'ONVIF username (an operator or admin account)')
      .option('--password <password>', 'ONVIF password (or $OUTPOST_ONVIF_PASSWORD: arguments end up in shell history)')
      .option('--json', 'print JSON')
      .action(async (o: { timeout: string; address?: string; username?: string; password?: string; json?: boolean }) => {
        const { runDiscoverCameras } = await import('./discover-cli.js');
        const r = await runDiscoverCameras(o);
        if (r.output) console.log(r.output);
        if (r.hint) console.error(r.hint);
        if (!r.ok) process.exitCode = 1;
      });
  },
};
