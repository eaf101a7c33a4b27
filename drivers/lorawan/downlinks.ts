// Class A downlinks: a bounded queue per device (fed by commands), and the choice of
// receive window. A Class A device listens only twice after each uplink: RX1 at
// RECEIVE_DELAY1 (JOIN_ACCEPT_DELAY1 = 5 s for a join) and RX2 one second later, so a
// downlink waits for the device's next uplink and is timed on that uplink's `tmst`.
import type { Region, Window } from './regions.js';
import type { TxPacket } from './gwmp.js';

export interface QueuedDownlink {
  id: string;
  fPort: number;
  bytes: Buffer;
  confirmed: boolean;
  expiresAt: number;
  requestedBy: string;
  /** Times it was sent (a confirmed downlink is sent again until the device acknowledges). */
  attempts: number;
}

/** A confirmed downlink the device did not acknowledge after this many sends is given up. */
export const MAX_CONFIRMED_ATTEMPTS = 3;

export class DownlinkQueueFull extends Error {
  constructor(device: string, max: number) {
    super(`device "${device}" already has ${max} downlinks queued (drivers.lorawan.maxQueuedDownlinks)`);
    this.name = 'DownlinkQueueFull';
  }
}

export class DownlinkQueues {
  private readonly queues = new Map<string, QueuedDownlink[]>();

  constructor(private readonly max: number) {}

  /** Appends; returns the position in the device's queue (1 = next). */
  enqueue(device: string, d: QueuedDownlink): number {
    const q = this.queues.get(device) ?? [];
    if (q.length >= this.max) throw new DownlinkQueueFull(device, this.max);
    q.push(d);
    this.queues.set(device, q);
    return q.length;
  }

  /** The next downlink to send, after dropping expired ones (handed to `expired`). */
  peek(device: string, now: number, expired: (d: QueuedDownlink) => void): QueuedDownlink | undefined {
    const q = this.queues.get(device);
    if (!q) return undefined;
    while (q.length > 0 && q[0].expiresAt <= now) expired(q.shift()!);
    if (q.length === 0) this.queues.delete(device);
    return q[0];
  }

  /** Removes the head once it is done with (sent unconfirmed, acknowledged, or given up). */
  done(device: string, id: string): void {
    const q = this.queues.get(device);
    if (!q || q[0]?.id !== id) return;
    q.shift();
    if (q.length === 0) this.queues.delete(device);
  }

  size(device: string): number {
    return this.queues.get(device)?.length ?? 0;
  }

  list(device: string): readonly QueuedDownlink[] {
    return this.queues.get(device) ?? [];
  }
}

/** Lead time a forwarder needs before the transmit time (its just-in-time queue). */
const LEAD_MS = 100;
const US_PER_S = 1_000_000;

export interface UplinkTiming {
  tmst: number;
  freq: number;
  dr: number;
  /** Local time the uplink's datagram arrived. */
  receivedAt: number;
}

/**
 * RX1 if there is still time for it, else RX2, else null (too late: counted by the caller).
 * `delayS` is RECEIVE_DELAY1, or JOIN_ACCEPT_DELAY1 for a JoinAccept.
 */
export function chooseWindow(
  region: Region,
  up: UplinkTiming,
  delayS: number,
  rx1DrOffset: number,
  now: number,
): { window: 'rx1' | 'rx2'; tmst: number; at: Window } | null {
  const elapsed = now - up.receivedAt;
  if (elapsed + LEAD_MS < delayS * 1000) {
    return { window: 'rx1', tmst: (up.tmst + delayS * US_PER_S) >>> 0, at: region.rx1(up.freq, up.dr, rx1DrOffset) };
  }
  if (elapsed + LEAD_MS < (delayS + 1) * 1000) {
    return { window: 'rx2', tmst: (up.tmst + (delayS + 1) * US_PER_S) >>> 0, at: region.rx2() };
  }
  return null;
}

export function txPacket(tmst: number, at: Window, phy: Buffer): TxPacket {
  return {
    imme: false,
    tmst,
    freq: at.freq,
    rfch: 0,
    powe: at.powe,
    modu: 'LORA',
    datr: at.datr,
    codr: '4/5',
    ipol: true,
    size: phy.length,
    data: phy.toString('base64'),
  };
}
