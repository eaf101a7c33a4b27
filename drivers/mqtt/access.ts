// Who may connect and what they may touch. A device logs in with its own username and
// password (scrypt hash in the config), publishes only under its own topic prefix and
// subscribes only to its own command topic. Anonymous clients are trusted local tools
// (a newcomer's mosquitto_pub, a dashboard): allowed from loopback only by default.
import { createHash } from 'node:crypto';
import type { DeviceView } from '../../gateway/contract/descriptor.js';
import type { MqttDeviceConfig, MqttDriverConfig } from './schema.js';
import { verifyPassword } from '../../gateway/kernel/secrets.js';
import { commandTopic, devicePrefix } from './topics.js';

export interface DeviceIdentity {
  kind: 'device';
  device: string;
  zone: string;
  prefix: string;
  command: string;
}

export interface AnonymousIdentity {
  kind: 'anonymous';
}

export type Identity = DeviceIdentity | AnonymousIdentity;

export type LoginResult = { ok: true; identity: Identity } | { ok: false; code: 4 | 5; reason: string };

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class AccessControl {
  private readonly byUsername = new Map<string, DeviceView<MqttDeviceConfig>>();
  // Remembers passwords that verified (as a digest) so a reconnect storm does not pay
  // one scrypt per attempt; bounded, and cleared with the process.
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly site: string,
    devices: readonly DeviceView<MqttDeviceConfig>[],
    private readonly anonymous: MqttDriverConfig['anonymous'],
  ) {
    for (const d of devices) this.byUsername.set(d.config.username, d);
  }

  async login(username: string | undefined, password: Buffer | undefined, remoteAddress: string | undefined): Promise<LoginResult> {
    if (username === undefined || username === '') {
      const allowed = this.anonymous === 'always' || (this.anonymous === 'loopback' && isLoopback(remoteAddress));
      return allowed
        ? { ok: true, identity: { kind: 'anonymous' } }
        : { ok: false, code: 5, reason: `anonymous login refused from ${remoteAddress ?? 'unknown address'}` };
    }
    const dev = this.byUsername.get(username);
    if (!dev || !password) return { ok: false, code: 4, reason: `unknown user "${username}" or no password` };
    const pw = password.toString('utf8');
    const digest = createHash('sha256').update(dev.config.passwordHash).update('\0').update(pw).digest('hex');
    if (this.verified.get(username) !== digest) {
      if (!(await verifyPassword(pw, dev.config.passwordHash))) return { ok: false, code: 4, reason: `wrong password for "${username}"` };
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(username, digest);
    }
    return {
      ok: true,
      identity: {
        kind: 'device',
        device: dev.id,
        zone: dev.zone,
        prefix: devicePrefix(this.site, dev.zone, dev.id),
        command: commandTopic(this.site, dev.zone, dev.id),
      },
    };
  }

  /** Returns why a publish is refused, or null when allowed. */
  publishDenied(id: Identity, topic: string): string | null {
    if (topic.startsWith('$SYS')) return '$SYS topics are reserved for the broker';
    if (id.kind === 'anonymous') return null;
    if (!topic.startsWith(id.prefix)) return `device "${id.device}" may publish only under ${id.prefix}`;
    const rest = topic.slice(id.prefix.length);
    if (rest === 'telemetry' || rest === 'status' || (rest.startsWith('telemetry/') && rest.length > 10)) return null;
    return `device "${id.device}" may publish only to ${id.prefix}telemetry[/point] and ${id.prefix}status`;
  }

  /** Returns why a subscription is refused, or null when allowed. */
  subscribeDenied(id: Identity, filter: string): string | null {
    if (id.kind === 'anonymous') return null;
    return filter === id.command ? null : `device "${id.device}" may subscribe only to ${id.command}`;
  }
}
