// Local lock control with an access audit. A lock is a configured device driven either
// through a writable Modbus coil or through MQTT lock/unlock commands. Every attempt —
// granted or denied, from the API or (later) a rule or a badge reader — is recorded as an
// `access.granted` / `access.denied` event saying who, what, when, how and why. Nothing
// here needs the cloud. Timed unlocks re-lock by themselves.
import type { LockConfig } from '../config/schema.js';
import type { Logger } from './kernel/log.js';
import type { Supervisor } from './supervisor.js';
import type { Command, CommandResult } from './contract/types.js';
import type { Role } from './kernel/schema-kit.js';

export type LockAction = 'lock' | 'unlock';

export interface Actor {
  /** Who asked: a token name, a rule id, a badge id. */
  name: string;
  role: Role;
  doorGroups: readonly string[];
  /** How the request came in: api, rule, badge, relock. */
  via: string;
}

export interface LockState {
  id: string;
  name: string | null;
  group: string;
  device: string;
  state: 'locked' | 'unlocked' | 'unknown';
  since: string | null;
  relockAt: string | null;
  lastBy: string | null;
}

export interface LockOutcome {
  granted: boolean;
  /** HTTP-ish status: 200 done, 403 not allowed, 404 no such lock, 400 bad request, 502 device failed. */
  status: 200 | 400 | 403 | 404 | 502;
  detail: string;
}

type Emit = (type: string, data: Record<string, unknown>, subject: string) => Promise<void>;

/** May this actor lock/unlock a door of this group? Operators need the group; admins may all. */
function mayOperate(actor: Pick<Actor, 'role' | 'doorGroups'>, group: string): { ok: boolean; why: string } {
  if (actor.role === 'viewer') return { ok: false, why: 'role viewer may not operate locks' };
  if (actor.role === 'admin') return { ok: true, why: 'role admin' };
  if (actor.doorGroups.includes('*') || actor.doorGroups.includes(group)) return { ok: true, why: `door group ${group}` };
  return { ok: false, why: `not allowed for door group "${group}"` };
}

export class LockController {
  private readonly locks = new Map<string, LockConfig>();
  private readonly state = new Map<
    string,
    { state: LockState['state']; since: number; lastBy: string | null; relock: NodeJS.Timeout | null; relockAt: number }
  >();

  constructor(
    configs: readonly LockConfig[],
    private readonly supervisor: () => Supervisor,
    private readonly emit: Emit,
    private readonly log: Logger,
  ) {
    for (const c of configs) {
      this.locks.set(c.id, c);
      this.state.set(c.id, { state: 'unknown', since: 0, lastBy: null, relock: null, relockAt: 0 });
    }
  }

  list(): LockState[] {
    return [...this.locks.values()].map((c) => this.describe(c));
  }

  get(id: string): LockState | undefined {
    const c = this.locks.get(id);
    return c ? this.describe(c) : undefined;
  }

  private describe(c: LockConfig): LockState {
    const s = this.state.get(c.id)!;
    return {
      id: c.id,
      name: c.name ?? null,
      group: c.group,
      device: c.device,
      state: s.state,
      since: s.since ? new Date(s.since).toISOString() : null,
      relockAt: s.relock ? new Date(s.relockAt).toISOString() : null,
      lastBy: s.lastBy,
    };
  }

  /** Checks authorisation, drives the device, and audits the attempt whatever the outcome. */
  async operate(
    id: string,
    action: LockAction,
    actor: Actor,
    opts: { seconds?: number; reason?: string; correlationId?: string } = {},
  ): Promise<LockOutcome> {
    const lock = this.locks.get(id);
    const audit = async (granted: boolean, detail: string, extra: Record<string, unknown> = {}) => {
      await this.emit(
        granted ? 'access.granted' : 'access.denied',
        {
          lock: id,
          group: lock?.group ?? null,
          action,
          by: actor.name,
          role: actor.role,
          via: actor.via,
          reason: opts.reason ?? null,
          detail,
          ...(opts.correlationId ? { correlationId: opts.correlationId } : {}),
          ...extra,
        },
        id,
      );
    };
    if (!lock) {
      await audit(false, 'no such lock');
      return { granted: false, status: 404, detail: `no lock "${id}"` };
    }
    const allowed = mayOperate(actor, lock.group);
    if (!allowed.ok) {
      await audit(false, allowed.why);
      return { granted: false, status: 403, detail: allowed.why };
    }
    const seconds = action === 'unlock' ? (opts.seconds ?? lock.unlockSeconds) : 0;
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > lock.maxUnlockSeconds) {
      const detail = `seconds must be an integer 0-${lock.maxUnlockSeconds}`;
      await audit(false, detail);
      return { granted: false, status: 400, detail };
    }
    const result = await this.drive(lock, action, actor, seconds);
    if (!result.ok) {
      await audit(false, `device did not respond: ${result.detail ?? 'failed'}`);
      return { granted: false, status: 502, detail: result.detail ?? 'the lock device failed' };
    }
    this.setState(lock, action, actor.name, seconds);
    await audit(true, allowed.why, action === 'unlock' ? { seconds } : {});
    return { granted: true, status: 200, detail: action === 'unlock' && seconds > 0 ? `unlocked for ${seconds} s` : `${action}ed` };
  }

  private drive(lock: LockConfig, action: LockAction, actor: Actor, seconds: number): Promise<CommandResult> {
    const unlockedCoil = lock.unlockedWhen === 'on';
    const cmd: Command =
      lock.modbusPoint !== undefined
        ? {
            id: crypto.randomUUID(),
            device: lock.device,
            action: 'write',
            point: lock.modbusPoint,
            value: action === 'unlock' ? unlockedCoil : !unlockedCoil,
            requestedBy: `${actor.via}:${actor.name}`,
          }
        : {
            id: crypto.randomUUID(),
            device: lock.device,
            action,
            ...(action === 'unlock' ? { seconds } : {}),
            requestedBy: `${actor.via}:${actor.name}`,
          };
    return this.supervisor().write(cmd);
  }

  private setState(lock: LockConfig, action: LockAction, by: string, seconds: number): void {
    const s = this.state.get(lock.id)!;
    if (s.relock) clearTimeout(s.relock);
    s.relock = null;
    s.state = action === 'unlock' ? 'unlocked' : 'locked';
    s.since = Date.now();
    s.lastBy = by;
    if (action === 'unlock' && seconds > 0) {
      s.relockAt = Date.now() + seconds * 1000;
      s.relock = setTimeout(() => {
        s.relock = null;
        const system: Actor = { name: 'timer', role: 'admin', doorGroups: ['*'], via: 'relock' };
        void this.operate(lock.id, 'lock', system, { reason: `timed unlock of ${seconds} s ended` }).then((o) => {
          if (!o.granted) this.log.error({ lock: lock.id, detail: o.detail }, 'automatic re-lock failed');
        });
      }, seconds * 1000);
      s.relock.unref();
    }
  }

  /** Records a refused attempt decided elsewhere (e.g. a badge not on the allow-list). */
  async deny(id: string, action: LockAction, actor: Actor, detail: string): Promise<LockOutcome> {
    await this.emit(
      'access.denied',
      {
        lock: id,
        group: this.locks.get(id)?.group ?? null,
        action,
        by: actor.name,
        role: actor.role,
        via: actor.via,
        reason: null,
        detail,
      },
      id,
    );
    return { granted: false, status: 403, detail };
  }

  /** Records an attempt that never got as far as an identity (no or a bad token). */
  async auditUnauthenticated(id: string, action: LockAction, via: string, why: string): Promise<void> {
    await this.emit(
      'access.denied',
      { lock: id, group: this.locks.get(id)?.group ?? null, action, by: null, role: null, via, reason: null, detail: why },
      id,
    );
  }

  /** Fail-secure shutdown: doors still inside a timed unlock are locked now. */
  async stop(): Promise<void> {
    const pending = [...this.state].filter(([, s]) => s.relock !== null).map(([id]) => id);
    for (const s of this.state.values()) if (s.relock) clearTimeout(s.relock);
    const system: Actor = { name: 'timer', role: 'admin', doorGroups: ['*'], via: 'relock' };
    await Promise.all(pending.map((id) => this.operate(id, 'lock', system, { reason: 'gateway stopping' }).catch(() => undefined)));
  }
}
