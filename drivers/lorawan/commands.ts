// Commands → downlinks. `downlink {fPort, hex | base64 | data, confirmed?, ttlSeconds?}`
// sends bytes (or `data` through the profile codec's encodeDownlink); `write {point,
// value}` asks the codec to encode `{ [point]: value }`. The same path serves the local
// API, the CLI, rules' write actions and cloud commands.
import type { Command } from '../../gateway/contract/types.js';
import type { LoraDevice } from './network.js';

export interface DownlinkRequest {
  fPort: number;
  bytes: Buffer;
  confirmed?: boolean;
  ttlS?: number;
}

const DEFAULT_FPORT = 1;

export function downlinkFromCommand(cmd: Command, device: LoraDevice): DownlinkRequest | { error: string } {
  if (cmd.action === 'write') return encode(device, { [cmd.point]: cmd.value }, undefined, {});
  if (cmd.action !== 'custom' || cmd.name !== 'downlink') {
    return { error: `LoRaWAN devices take "downlink" and "write" commands, not "${cmd.action === 'custom' ? cmd.name : cmd.action}"` };
  }
  const a = cmd.args;
  const fPort = a.fPort === undefined ? undefined : Number(a.fPort);
  if (fPort !== undefined && !Number.isInteger(fPort)) return { error: 'args.fPort must be an integer (1-223)' };
  const opts = {
    ...(typeof a.confirmed === 'boolean' ? { confirmed: a.confirmed } : {}),
    ...(typeof a.ttlSeconds === 'number' && a.ttlSeconds > 0 ? { ttlS: a.ttlSeconds } : {}),
  };
  if (typeof a.hex === 'string') {
    if (!/^([0-9A-Fa-f]{2})*$/.test(a.hex)) return { error: 'args.hex must be an even number of hex digits' };
    return { fPort: fPort ?? DEFAULT_FPORT, bytes: Buffer.from(a.hex, 'hex'), ...opts };
  }
  if (typeof a.base64 === 'string') return { fPort: fPort ?? DEFAULT_FPORT, bytes: Buffer.from(a.base64, 'base64'), ...opts };
  if (a.data && typeof a.data === 'object' && !Array.isArray(a.data)) return encode(device, a.data as Record<string, unknown>, fPort, opts);
  return { error: 'a downlink needs args.hex, args.base64 or args.data (for the codec)' };
}

function encode(
  device: LoraDevice,
  data: Record<string, unknown>,
  fPort: number | undefined,
  opts: Omit<DownlinkRequest, 'fPort' | 'bytes'>,
): DownlinkRequest | { error: string } {
  const codec = device.codec;
  if (!codec?.encodeDownlink) return { error: `device "${device.id}": its codec has no encodeDownlink (send args.hex instead)` };
  try {
    const r = codec.encodeDownlink(data, fPort);
    if (r.errors.length > 0) return { error: `codec: ${r.errors.join('; ')}` };
    return { fPort: r.fPort ?? fPort ?? DEFAULT_FPORT, bytes: Buffer.from(r.bytes), ...opts };
  } catch (err) {
    return { error: `codec: ${(err as Error).message}` };
  }
}
