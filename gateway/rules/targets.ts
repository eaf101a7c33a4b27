// What rules' actions act on (actions.ts), wired to the gateway's parts: alerts, device
// writes through the drivers, locks through the audited lock controller, MQTT publishes
// through whichever running driver can publish, events, and durable webhook deliveries.
import type { AlertStore } from '../alerts.js';
import { isPublisher } from '../contract/driver.js';
import type { LockController } from '../locks.js';
import type { Supervisor } from '../supervisor.js';
import type { ActionTargets } from './actions.js';

export interface TargetParts {
  alerts: AlertStore;
  supervisor: () => Supervisor;
  locks: LockController;
  allowLists: Readonly<Record<string, readonly string[]>>;
  emitEvent(type: string, data: unknown, subject?: string): Promise<void>;
  enqueueWebhook(endpoint: string, data: unknown, subject: string): Promise<void>;
}

export function ruleTargets(p: TargetParts): ActionTargets {
  return {
    raiseAlert: (a) => p.alerts.raise(a),
    write: (cmd) => p.supervisor().write(cmd),
    operateLock: (id, action, actor, opts) => p.locks.operate(id, action, actor, opts),
    denyLock: (id, action, actor, detail) => p.locks.deny(id, action, actor, detail),
    allowList: (name) => p.allowLists[name],
    locksInGroup: (group) =>
      p.locks
        .list()
        .filter((l) => l.group === group)
        .map((l) => l.id),
    publish: (topic, payload, qos) => {
      const publisher = p.supervisor().find(isPublisher);
      if (!publisher) return Promise.reject(new Error('MQTT is disabled'));
      return publisher.publish(topic, payload, qos);
    },
    emitEvent: (type, data, subject) => p.emitEvent(type, data, subject),
    enqueueWebhook: (endpoint, data, subject) => p.enqueueWebhook(endpoint, data, subject),
  };
}
