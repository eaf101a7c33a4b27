// Core data types that flow through the gateway (see docs/ARCHITECTURE.md).

export type ReadingValue = number | boolean | string;
export type Quality = 'good' | 'uncertain' | 'bad';

/** One sample of one point of one device. `ts` is milliseconds since the epoch (UTC). */
export interface Reading {
  ts: number;
  device: string;
  point: string;
  value: ReadingValue;
  unit?: string;
  quality?: Quality;
}

/** A gateway event; stored and sent upstream in CloudEvents 1.0 shape. */
export interface OutpostEvent {
  id: string;
  ts: number;
  type: string;
  source: string;
  subject?: string;
  data?: unknown;
}

/** A request for a driver to act on a device (open a relay, publish a command). */
export interface Command {
  id: string;
  device: string;
  action: string;
  args?: Record<string, unknown>;
  requestedBy: string;
}

export interface CommandResult {
  ok: boolean;
  detail?: string;
}
