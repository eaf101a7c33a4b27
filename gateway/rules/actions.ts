// Carries out what fired rules ask for, on the main thread where the drivers live:
// alerts, device writes, lock/unlock (through the audited lock controller, as actor
// `rule:<id>`), MQTT publishes, webhooks and events. Every firing is itself recorded as a
// `rule.fired` event; each action's outcome is counted, and a failed action is logged
// and recorded as `rule.action_failed` — it never stops the other actions.
import type { Actor, LockAction, LockOutcome } from '../locks.js';
import type { Logger } from '../kernel/log.js';
import type { Metrics } from '../metrics.js';
import type { Command, CommandResult } from '../contract/types.js';
import type { Firing } from './engine.js';
import type { Action, Severity } from '../../config/rules-schema.js';

export interface ActionTargets {
  raiseAlert(a: { key: string; rule: string; severity: Severity; message: string; data: unknown }): Promise<unknown>;
  write(cmd: Command): Promise<CommandResult>;
  operateLock(
    id: string,
    action: LockAction,
    actor: Actor,
    opts: { seconds?: number; reason?: string; correlationId?: string },
  ): Promise<LockOutcome>;
  denyLock(id: string, action: LockAction, actor: Actor, detail: string): Promise<LockOutcome>;
  allowList(name: string): readonly string[] | undefined;
  locksInGroup(group: string): string[];
  publish(topic: string, payload: Buffer, qos: 0 | 1): Promise<void>;
  emitEvent(type: string, data: unknown, subject?: string): Promise<void>;
  /** Records a durable, signed delivery to a configured endpoint (gateway/webhooks/). */
  enqueueWebhook(endpoint: string, data: unknown, subject: string): Promise<void>;
}

export class ActionExecutor {
  constructor(
    private readonly targets: ActionTargets,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  handle(firings: readonly Firing[]): void {
    for (const f of firings) void this.fire(f);
  }

  private async fire(f: Firing): Promise<void> {
    this.metrics.rulesFirings.inc({ rule: f.rule });
    // One id follows the chain a firing starts (rule.fired → alert → access / command /
    // webhook): events carry it as data.correlationId, CloudEvents as outpostcorrelationid.
    const correlationId = crypto.randomUUID();
    void this.targets
      .emitEvent('rule.fired', { rule: f.rule, key: f.key, context: f.context, correlationId }, f.rule)
      .catch(() => undefined);
    for (const action of f.actions) {
      const kind = Object.keys(action)[0] ?? 'unknown';
      try {
        await this.run(f, action, correlationId);
        this.metrics.rulesActions.inc({ kind, result: 'ok' });
      } catch (err) {
        this.metrics.rulesActions.inc({ kind, result: 'error' });
        this.log.warn({ rule: f.rule, action: kind, err: (err as Error).message }, 'rule action failed');
        void this.targets
          .emitEvent('rule.action_failed', { rule: f.rule, action, error: (err as Error).message, correlationId }, f.rule)
          .catch(() => undefined);
      }
    }
  }

  private async run(f: Firing, a: Action, correlationId: string): Promise<void> {
    const by = `rule:${f.rule}`;
    if (a.alert) {
      await this.targets.raiseAlert({
        key: a.alert.key ?? `${f.rule}:${f.key}`,
        rule: f.rule,
        severity: a.alert.severity,
        message: a.alert.message,
        data: { ...f.context, correlationId },
      });
    } else if (a.write) {
      const r = await this.targets.write({
        id: crypto.randomUUID(),
        device: a.write.device,
        action: 'write',
        point: a.write.point,
        value: a.write.value,
        requestedBy: by,
        correlationId,
      });
      if (!r.ok) throw new Error(r.detail ?? 'write failed');
    } else if (a.lock) {
      const ids = [...(a.lock.locks ?? []), ...(a.lock.group ? this.targets.locksInGroup(a.lock.group) : [])];
      if (ids.length === 0) throw new Error('no locks matched');
      // Rules are written by the installer, so they act with full rights; each attempt is audited.
      const actor: Actor = { name: by, role: 'admin', doorGroups: ['*'], via: 'rule' };
      const outcomes = await Promise.all(
        ids.map((id) =>
          this.targets.operateLock(id, a.lock!.action, actor, {
            ...(a.lock!.seconds !== undefined ? { seconds: a.lock!.seconds } : {}),
            reason: `rule ${f.rule}`,
            correlationId,
          }),
        ),
      );
      const failed = outcomes.filter((o) => !o.granted);
      if (failed.length > 0) throw new Error(failed.map((o) => o.detail).join('; '));
    } else if (a.badge) {
      // A badge/keypad reading: open the door only for a credential on the local
      // allow-list; either way the attempt is audited with the credential as actor.
      const { lock, list, credential } = a.badge;
      const actor: Actor = { name: `badge:${credential}`, role: 'admin', doorGroups: ['*'], via: 'badge' };
      const allowed = this.targets.allowList(list);
      if (!allowed) throw new Error(`unknown allow-list "${list}"`);
      if (!allowed.includes(credential)) {
        await this.targets.denyLock(lock, 'unlock', actor, `credential not on allow-list "${list}"`);
        return;
      }
      const o = await this.targets.operateLock(lock, 'unlock', actor, {
        ...(a.badge.seconds !== undefined ? { seconds: a.badge.seconds } : {}),
        reason: `rule ${f.rule}, allow-list ${list}`,
        correlationId,
      });
      if (!o.granted) throw new Error(o.detail);
    } else if (a.publish) {
      const payload = typeof a.publish.payload === 'string' ? a.publish.payload : JSON.stringify(a.publish.payload ?? null);
      await this.targets.publish(a.publish.topic, Buffer.from(payload), (a.publish.qos ?? 0) as 0 | 1);
    } else if (a.webhook?.endpoint !== undefined) {
      // Durable: the row is written now, delivery (with retries) happens in gateway/webhooks/.
      const data = a.webhook.body ?? { rule: f.rule, key: f.key, context: f.context, correlationId };
      await this.targets.enqueueWebhook(a.webhook.endpoint, data, f.context.device ?? f.context.subject ?? f.rule);
    } else if (a.webhook?.url !== undefined) {
      const w = a.webhook;
      const body =
        w.body === undefined
          ? JSON.stringify({ rule: f.rule, key: f.key, context: f.context, correlationId })
          : typeof w.body === 'string'
            ? w.body
            : JSON.stringify(w.body);
      const res = await fetch(w.url!, {
        method: w.method,
        headers: { 'content-type': 'application/json', ...(w.headers ?? {}) },
        body,
        signal: AbortSignal.timeout(w.timeoutMs),
      });
      await res.body?.cancel(); // only the status matters; free the connection
      if (!res.ok) throw new Error(`webhook ${w.url} answered HTTP ${res.status}`);
    } else if (a.event) {
      await this.targets.emitEvent(a.event.type, a.event.data ?? f.context, f.context.device ?? f.context.subject ?? f.rule);
    }
  }
}
