// Cayenne LPP (Low Power Payload), built in: a frame is a run of [channel, type, value...].
// Types and resolutions follow the myDevices LPP reference (IPSO object id - 3200) and the
// extended set of the ElectronicCats/TTN CayenneLPP library; keys are `<type>_<channel>`.
// Bad input never throws: what decoded is kept and the problem goes to `errors`.
import { MAX_DOWNLINK_BYTES, type DecodeResult, type EncodeResult, type PayloadCodec, type UplinkInput } from './types.js';

interface LppType {
  name: string;
  size: number;
  read(b: Uint8Array, at: number): unknown;
}

/** Big-endian integer of `n` bytes at `at`, two's complement when `signed`. */
function int(b: Uint8Array, at: number, n: number, signed: boolean): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[at + i];
  return signed && v >= 2 ** (8 * n - 1) ? v - 2 ** (8 * n) : v;
}

// Dividing by the resolution's inverse (not multiplying by 0.1) keeps 272 -> 27.2 exact.
const scalar = (name: string, size: number, signed: boolean, div = 1): LppType => ({
  name,
  size,
  read: (b, at) => int(b, at, size, signed) / div,
});
const xyz = (name: string, div: number): LppType => ({
  name,
  size: 6,
  read: (b, at) => ({ x: int(b, at, 2, true) / div, y: int(b, at + 2, 2, true) / div, z: int(b, at + 4, 2, true) / div }),
});
const colour: LppType = { name: 'colour', size: 3, read: (b, at) => ({ r: b[at], g: b[at + 1], b: b[at + 2] }) };
const concentration = scalar('concentration', 2, false);

const TYPES = new Map<number, LppType>([
  [0x00, scalar('digital_in', 1, false)],
  [0x01, scalar('digital_out', 1, false)],
  [0x02, scalar('analog_in', 2, true, 100)],
  [0x03, scalar('analog_out', 2, true, 100)],
  [0x64, scalar('generic', 4, false)],
  [0x65, scalar('illuminance', 2, false)],
  [0x66, scalar('presence', 1, false)],
  [0x67, scalar('temperature', 2, true, 10)],
  [0x68, scalar('humidity', 1, false, 2)],
  [0x71, xyz('accelerometer', 1000)],
  [0x73, scalar('barometer', 2, false, 10)],
  [0x74, scalar('voltage', 2, false, 100)],
  [0x75, scalar('current', 2, false, 1000)],
  [0x76, scalar('frequency', 4, false)],
  [0x78, scalar('percentage', 1, false)],
  [0x79, scalar('altitude', 2, true)],
  [0x7d, concentration],
  [0x80, scalar('power', 2, false)],
  [0x82, scalar('distance', 4, false, 1000)],
  [0x83, scalar('energy', 4, false, 1000)],
  [0x84, scalar('direction', 2, false)],
  [0x85, scalar('unixtime', 4, false)],
  [0x86, xyz('gyrometer', 100)],
  [0x87, colour],
  [
    0x88,
    {
      name: 'gps',
      size: 9,
      read: (b, at) => ({
        latitude: int(b, at, 3, true) / 10000,
        longitude: int(b, at + 3, 3, true) / 10000,
        altitude: int(b, at + 6, 3, true) / 100,
      }),
    },
  ],
  [0x8e, scalar('switch', 1, false)],
  // ElectronicCats numbers these two outside the IPSO scheme (ppm, rgb): same payloads.
  [0x8f, concentration],
  [0x90, colour],
]);

const hex = (n: number) => '0x' + n.toString(16).padStart(2, '0');

export function decodeLpp(bytes: Uint8Array): DecodeResult {
  const data: Record<string, unknown> = {};
  const warnings: string[] = [];
  const errors: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) {
      errors.push(`offset ${at}: a channel byte without a type (truncated frame)`);
      break;
    }
    const channel = bytes[at];
    const typeId = bytes[at + 1];
    const type = TYPES.get(typeId);
    if (!type) {
      // The value's size is unknown, so nothing after it can be found.
      errors.push(`offset ${at}: unknown LPP type ${hex(typeId)} on channel ${channel}; stopped decoding`);
      break;
    }
    if (at + 2 + type.size > bytes.length) {
      errors.push(
        `offset ${at}: ${type.name} (${hex(typeId)}) on channel ${channel} needs ${type.size} bytes, ${bytes.length - at - 2} left`,
      );
      break;
    }
    const key = `${type.name}_${channel}`;
    if (Object.hasOwn(data, key)) warnings.push(`offset ${at}: ${key} appears twice; the later value is kept`);
    data[key] = type.read(bytes, at + 2);
    at += 2 + type.size;
  }
  return { data, warnings, errors };
}

/** Downlink: actuator set-points only, `digital_out_<ch>` (0/1/boolean) and `analog_out_<ch>`. */
export function encodeLpp(data: Record<string, unknown>, fPort?: number): EncodeResult {
  const out: number[] = [];
  const errors: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    const m = /^(digital_out|analog_out)_(\d{1,3})$/.exec(key);
    const channel = m ? Number(m[2]) : -1;
    if (!m || channel > 255) {
      errors.push(`${key}: LPP downlink takes digital_out_<0-255> or analog_out_<0-255>`);
      continue;
    }
    if (m[1] === 'digital_out') {
      const v = value === true ? 1 : value === false ? 0 : value;
      if (v !== 0 && v !== 1) errors.push(`${key}: must be 0, 1, true or false`);
      else out.push(channel, 0x01, v);
      continue;
    }
    const raw = typeof value === 'number' ? Math.round(value * 100) : NaN;
    if (!Number.isFinite(raw) || raw < -32768 || raw > 32767) errors.push(`${key}: must be a number from -327.68 to 327.67`);
    else out.push(channel, 0x03, (raw >> 8) & 0xff, raw & 0xff);
  }
  if (out.length > MAX_DOWNLINK_BYTES) errors.push(`${out.length} bytes is over the ${MAX_DOWNLINK_BYTES}-byte downlink limit`);
  // A partial command is worse than none: any error sends nothing.
  const bytes = errors.length > 0 ? new Uint8Array(0) : Uint8Array.from(out);
  return { bytes, ...(fPort !== undefined ? { fPort } : {}), warnings: [], errors };
}

export const lppCodec: PayloadCodec = {
  name: 'lpp',
  decodeUplink: (input: UplinkInput) => decodeLpp(input.bytes),
  encodeDownlink: encodeLpp,
  close() {},
};
