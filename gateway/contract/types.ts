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

interface CommandBase {
  id: string;
  device: string;
  /** Who asked, as `<via>:<name>` (api:reception, rule:door-open, cloud:office:ops). */
  requestedBy: string;
  /** The chain this command belongs to (a rule firing's id), when there is one. */
  correlationId?: string;
}

/** Set one point of a device: a coil, a register, a relay behind an HTTP call. */
export interface WriteCommand extends CommandBase {
  action: 'write';
  point: string;
  value: ReadingValue;
}

/** Lock or unlock a door controller that takes the command itself (not through a point). */
export interface LockCommand extends CommandBase {
  action: 'lock' | 'unlock';
  seconds?: number;
}

/** Anything else a device understands, passed through as a name and arguments. */
export interface CustomCommand extends CommandBase {
  action: 'custom';
  name: string;
  args: Record<string, unknown>;
}

/** A request for a driver to act on a device. */
export type Command = WriteCommand | LockCommand | CustomCommand;

const isValue = (v: unknown): v is ReadingValue => typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string';

/**
 * The command an API or cloud request `{action, args}` asks for: write needs
 * args.point and a scalar args.value (else the reason why not), lock/unlock take an
 * optional args.seconds, any other action is passed through as a custom command.
 */
export function commandFrom(base: CommandBase, action: string, args: Record<string, unknown> = {}): Command | string {
  if (action === 'write') {
    if (typeof args.point !== 'string' || !isValue(args.value))
      return 'write needs args.point and a scalar args.value (number, boolean or string)';
    return { ...base, action, point: args.point, value: args.value };
  }
  if (action === 'lock' || action === 'unlock') {
    return { ...base, action, ...(typeof args.seconds === 'number' ? { seconds: args.seconds } : {}) };
  }
  return { ...base, action: 'custom', name: action, args };
}

/** What a device is told: the action name and its arguments, as an MQTT device receives them. */
export function commandArgs(cmd: Command): { action: string; args: Record<string, unknown> } {
  if (cmd.action === 'write') return { action: 'write', args: { point: cmd.point, value: cmd.value } };
  if (cmd.action === 'custom') return { action: cmd.name, args: cmd.args };
  return { action: cmd.action, args: cmd.seconds !== undefined ? { seconds: cmd.seconds } : {} };
}

export interface CommandResult {
  ok: boolean;
  detail?: string;
}

/** A command as the audit records it (`command.sent` / `command.failed` event data). */
export function commandAudit(cmd: Command): {
  id: string;
  device: string;
  action: string;
  args: Record<string, unknown>;
  requestedBy: string;
} {
  return { id: cmd.id, device: cmd.device, ...commandArgs(cmd), requestedBy: cmd.requestedBy };
}
