// Regional parameters (LoRaWAN Regional Parameters RP002-1.0.x) for the two regions we
// support: data rates, where and how RX1 and RX2 answer, transmit power, the EU868
// JoinAccept CFList.

export type RegionName = 'EU868' | 'US915';

export interface Window {
  freq: number;
  datr: string;
  powe: number;
}

export interface Region {
  name: RegionName;
  /** Data-rate index of an uplink's `datr` (e.g. SF7BW125), or null if the region has no such rate. */
  uplinkDr(datr: string): number | null;
  /** RX1 for an uplink received at `freq` (MHz) with data rate `dr`. */
  rx1(freq: number, dr: number, rx1DrOffset: number): Window;
  /** The fixed RX2 window. */
  rx2(): Window;
  /** Default RX2 data rate (DLSettings.RX2DataRate in a JoinAccept). */
  readonly rx2Dr: number;
  /** CFList of a JoinAccept (extra channels), if the region uses one. */
  cfList(): Buffer | null;
  /** Largest FRMPayload (N - FOpts - 8 overhead handled by the caller) at a downlink data rate. */
  maxPayload(datr: string): number;
}

const datrOf = (sf: number, bw: number) => `SF${sf}BW${bw}`;

/** EU868: DR0..5 = SF12..SF7 at 125 kHz, DR6 = SF7 at 250 kHz; RX1 on the uplink frequency. */
const EU_DRS = [datrOf(12, 125), datrOf(11, 125), datrOf(10, 125), datrOf(9, 125), datrOf(8, 125), datrOf(7, 125), datrOf(7, 250)];
const EU_MAX = [51, 51, 51, 115, 242, 242, 242];
// The usual extra channels of an EU868 plan (TTN's, and most gateways' default config).
const EU_EXTRA_CHANNELS_MHZ = [867.1, 867.3, 867.5, 867.7, 867.9];

const EU868: Region = {
  name: 'EU868',
  rx2Dr: 0,
  uplinkDr: (datr) => {
    const i = EU_DRS.indexOf(datr);
    return i < 0 ? null : i;
  },
  rx1: (freq, dr, off) => ({ freq, datr: EU_DRS[Math.max(0, Math.min(5, dr) - off)], powe: 14 }),
  rx2: () => ({ freq: 869.525, datr: EU_DRS[0], powe: 14 }),
  cfList: () => {
    const out = Buffer.alloc(16); // five 3-byte frequencies in units of 100 Hz, then CFListType 0
    EU_EXTRA_CHANNELS_MHZ.forEach((mhz, i) => out.writeUIntLE(Math.round(mhz * 10_000), i * 3, 3));
    return out;
  },
  maxPayload: (datr) => EU_MAX[EU_DRS.indexOf(datr)] ?? 51,
};

/** US915 uplink DR0..3 = SF10..SF7 at 125 kHz, DR4 = SF8 at 500 kHz; downlink DR8..13 = SF12..SF7 at 500 kHz. */
const US_UP = [datrOf(10, 125), datrOf(9, 125), datrOf(8, 125), datrOf(7, 125), datrOf(8, 500)];
const US_DOWN: Record<number, string> = {
  8: datrOf(12, 500),
  9: datrOf(11, 500),
  10: datrOf(10, 500),
  11: datrOf(9, 500),
  12: datrOf(8, 500),
  13: datrOf(7, 500),
};
const US_MAX: Record<string, number> = { SF12BW500: 53, SF11BW500: 129, SF10BW500: 242, SF9BW500: 242, SF8BW500: 242, SF7BW500: 242 };
// RP002 table "US915 downlink RX1 data rate mapping": row = uplink DR, column = RX1DROffset.
const US_RX1: number[][] = [
  [10, 9, 8, 8],
  [11, 10, 9, 8],
  [12, 11, 10, 9],
  [13, 12, 11, 10],
  [13, 13, 12, 11],
];

/** Uplink channel index from its frequency: 64 × 125 kHz from 902.3 MHz, 8 × 500 kHz from 903.0 MHz. */
function usChannel(freq: number, dr: number): number {
  if (dr === 4) return 64 + Math.max(0, Math.min(7, Math.round((freq - 903.0) / 1.6)));
  return Math.max(0, Math.min(63, Math.round((freq - 902.3) / 0.2)));
}

const US915: Region = {
  name: 'US915',
  rx2Dr: 8,
  uplinkDr: (datr) => {
    const i = US_UP.indexOf(datr);
    return i < 0 ? null : i;
  },
  rx1: (freq, dr, off) => {
    const ch = usChannel(freq, dr);
    const row = US_RX1[Math.min(4, dr)];
    return { freq: Math.round((923.3 + 0.6 * (ch % 8)) * 10) / 10, datr: US_DOWN[row[Math.min(3, off)]], powe: 20 };
  },
  rx2: () => ({ freq: 923.3, datr: US_DOWN[8], powe: 20 }),
  cfList: () => null,
  maxPayload: (datr) => US_MAX[datr] ?? 53,
};

export const REGIONS: Record<RegionName, Region> = { EU868, US915 };
