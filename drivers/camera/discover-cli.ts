// `outpost discover cameras`: a WS-Discovery probe, and with credentials, what each camera
// found says about itself over ONVIF (device, profiles, stream URIs), so an installer can
// fill in devices[].camera.onvif (or .rtsp) without the vendor's tool.
import { isIPv6 } from 'node:net';
import { probeOnvif, type DiscoveredCamera } from './discovery.js';
import { connectOnvif, type OnvifDeviceInfo, type OnvifProfile } from './onvif.js';

const ONVIF_TIMEOUT_MS = 5000;
const PARALLEL = 4;

export interface DiscoverCamerasOptions {
  timeout: string;
  address?: string;
  username?: string;
  password?: string;
  json?: boolean;
}

export interface CameraReport extends DiscoveredCamera {
  device?: OnvifDeviceInfo;
  profiles?: (OnvifProfile & { streamUri?: string })[];
  error?: string;
}

/** `3s`, `500ms`, `2` (seconds) → ms. */
function parseTimeout(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms > 0 && ms <= 60_000)) throw new Error(`--timeout "${v}": use e.g. 3s or 500ms (at most 60s)`);
  return ms;
}

/** `HOST`, `HOST:PORT`, `[v6]:PORT` → probe target (WS-Discovery port 3702 by default). */
function parseAddress(v: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(v);
  const colon = v.lastIndexOf(':');
  const [host, port] = bracketed
    ? [bracketed[1], bracketed[2]]
    : isIPv6(v) || colon < 0
      ? [v, undefined]
      : [v.slice(0, colon), v.slice(colon + 1)];
  const n = port === undefined ? undefined : Number(port);
  if (!host || /\s/.test(host) || (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= 65535))) {
    throw new Error(`--address "${v}": use HOST or HOST:PORT`);
  }
  return n === undefined ? { host } : { host, port: n };
}

async function inspect(cam: DiscoveredCamera, username: string, password: string | undefined): Promise<CameraReport> {
  try {
    const onvif = await connectOnvif(
      { host: cam.host, port: cam.port, username, ...(password ? { password } : {}) },
      { timeoutMs: ONVIF_TIMEOUT_MS },
    );
    try {
      const device = await onvif.deviceInformation();
      const profiles: CameraReport['profiles'] = [];
      for (const p of await onvif.profiles()) {
        profiles.push(p.encoding === null ? p : { ...p, streamUri: await onvif.streamUri(p.token) });
      }
      return { ...cam, device, profiles };
    } finally {
      await onvif.close();
    }
  } catch (err) {
    return { ...cam, error: (err as Error).message };
  }
}

function describe(r: CameraReport): string[] {
  const s = r.scopes;
  const lines = [`${r.address}  ${r.urn}`];
  const scope = [s.name && `name "${s.name}"`, s.hardware && `hardware ${s.hardware}`, s.location && `location ${s.location}`]
    .filter(Boolean)
    .join(', ');
  if (scope) lines.push(`  ${scope}`);
  if (r.device) {
    const d = r.device;
    lines.push(`  ${d.manufacturer} ${d.model}, firmware ${d.firmwareVersion}, serial ${d.serialNumber}`);
  }
  for (const p of r.profiles ?? []) {
    const video = p.encoding === null ? 'no video' : `${p.encoding} ${p.width ?? '?'}x${p.height ?? '?'} ${p.fps ?? '?'} fps`;
    lines.push(`  profile ${p.token} "${p.name}": ${video}${p.streamUri ? `  ${p.streamUri}` : ''}`);
  }
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines;
}

/** Output for stdout, a hint for stderr, and whether every step worked (exit 0). */
export async function runDiscoverCameras(o: DiscoverCamerasOptions): Promise<{ output: string; hint?: string; ok: boolean }> {
  const timeoutMs = parseTimeout(o.timeout);
  const password = o.password ?? process.env.OUTPOST_ONVIF_PASSWORD;
  if (password !== undefined && !o.username) throw new Error('--password needs --username');
  const found = await probeOnvif({ timeoutMs, ...(o.address ? { targets: [parseAddress(o.address)] } : {}) });
  const reports: CameraReport[] = found.map((c) => ({ ...c }));
  if (o.username) {
    for (let i = 0; i < found.length; i += PARALLEL) {
      const batch = await Promise.all(found.slice(i, i + PARALLEL).map((c) => inspect(c, o.username!, password)));
      reports.splice(i, batch.length, ...batch);
    }
  }
  const ok = reports.every((r) => !r.error);
  const where = o.address ? `from ${o.address}` : 'to the multicast probe';
  const hint =
    reports.length === 0
      ? `no camera answered ${where} within ${timeoutMs} ms` +
        (o.address
          ? ' (is WS-Discovery enabled on it? some cameras only answer multicast)'
          : ' (multicast may be blocked on this network; try --address <camera-ip>)')
      : !o.username
        ? 'add --username and --password to read device info, profiles and stream URIs'
        : undefined;
  if (o.json) return { output: JSON.stringify(reports, null, 2), ok, ...(hint ? { hint } : {}) };
  const lines = reports.length ? [`${reports.length} camera${reports.length === 1 ? '' : 's'} found:`, ...reports.flatMap(describe)] : [];
  return { output: lines.join('\n'), ok, ...(hint ? { hint } : {}) };
}
