// Known devices: the configured ones plus any seen on the wire (e.g. anonymous loopback
// publishers), with online state and last-seen time for the API and `outpost status`.
import type { DeviceConfig } from '../config/schema.js';

export interface DeviceState {
  id: string;
  zone: string | null;
  name: string | null;
  configured: boolean;
  online: boolean;
  lastSeen: string | null;
  via: string | null;
}

interface Entry {
  id: string;
  zone: string | null;
  name: string | null;
  configured: boolean;
  online: boolean;
  lastSeen: number;
  via: string | null;
}

const MAX_UNCONFIGURED = 10_000;

export class DeviceRegistry {
  private readonly byId = new Map<string, Entry>();
  private unconfigured = 0;

  constructor(configured: readonly DeviceConfig[]) {
    for (const d of configured) {
      this.byId.set(d.id, { id: d.id, zone: d.zone, name: d.name ?? null, configured: true, online: false, lastSeen: 0, via: null });
    }
  }

  get(id: string): Pick<DeviceConfig, 'id' | 'zone' | 'name'> | undefined {
    const e = this.byId.get(id);
    return e?.configured ? { id: e.id, zone: e.zone ?? '', ...(e.name ? { name: e.name } : {}) } : undefined;
  }

  /** Notes traffic from a device. Unknown devices are tracked up to a bound. */
  seen(id: string, ts: number, via: string, zone?: string): void {
    let e = this.byId.get(id);
    if (!e) {
      if (this.unconfigured >= MAX_UNCONFIGURED) return;
      this.unconfigured++;
      e = { id, zone: zone ?? null, name: null, configured: false, online: false, lastSeen: 0, via };
      this.byId.set(id, e);
    }
    if (ts > e.lastSeen) e.lastSeen = ts;
    e.via = via;
  }

  setOnline(id: string, online: boolean, via: string, zone?: string): void {
    this.seen(id, online ? Date.now() : 0, via, zone);
    const e = this.byId.get(id);
    if (e) e.online = online;
  }

  /** Online state and last transport of one device, without building the whole list. */
  state(id: string): { online: boolean; via: string | null } | undefined {
    const e = this.byId.get(id);
    return e ? { online: e.online, via: e.via } : undefined;
  }

  get size(): number {
    return this.byId.size;
  }

  list(): DeviceState[] {
    return [...this.byId.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((e) => ({
        id: e.id,
        zone: e.zone,
        name: e.name,
        configured: e.configured,
        online: e.online,
        lastSeen: e.lastSeen > 0 ? new Date(e.lastSeen).toISOString() : null,
        via: e.via,
      }));
  }
}
