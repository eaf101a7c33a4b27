// What the rules know of devices: the zone and tags of each configured device, for trigger
// filters (`when.reading.zone`) and `device` conditions. Readings carry only a device id, so
// zone and tags come from `devices:` in the site config; an event may name its own zone
// (`data.zone`, e.g. a camera's detection zone) and device (`data.device`).
import { globRegExp } from './compare.js';

export interface DeviceInfo {
  id: string;
  zone: string;
  tags: readonly string[];
}

export interface DeviceFilterConfig {
  id?: string;
  zone?: string;
  tags?: string[];
}

/** device: the device id (if any); zone: a zone named by the fact itself, else the device's. */
export type DeviceMatch = (device: string | undefined, zone: string | undefined) => boolean;

export class DeviceDirectory {
  private readonly byId = new Map<string, DeviceInfo>();

  constructor(devices: readonly DeviceInfo[] = []) {
    for (const d of devices) this.byId.set(d.id, d);
  }

  get(id: string | undefined): DeviceInfo | undefined {
    return id === undefined ? undefined : this.byId.get(id);
  }

  zoneOf(id: string | undefined, own?: string): string | undefined {
    return own ?? this.get(id)?.zone;
  }

  /** A predicate for a filter, or null when the filter names nothing. Unknown devices match only an id-only filter. */
  compile(f: DeviceFilterConfig): DeviceMatch | null {
    const id = f.id !== undefined ? globRegExp(f.id) : null;
    const zone = f.zone !== undefined ? globRegExp(f.zone) : null;
    const tags = f.tags ?? [];
    if (!id && !zone && tags.length === 0) return null;
    return (device, ownZone) => {
      if (id && (device === undefined || !id.test(device))) return false;
      if (zone) {
        const z = this.zoneOf(device, ownZone);
        if (z === undefined || !zone.test(z)) return false;
      }
      if (tags.length > 0) {
        const have = this.get(device)?.tags;
        if (!have || !tags.every((t) => have.includes(t))) return false;
      }
      return true;
    };
  }
}

/** The device and zone an event is about: `data.device` / `data.zone` when it names them, else its subject. */
export function eventDevice(data: unknown, subject: string | undefined): { device: string | undefined; zone: string | undefined } {
  const d = data !== null && typeof data === 'object' ? (data as Record<string, unknown>) : {};
  return {
    device: typeof d.device === 'string' ? d.device : subject,
    zone: typeof d.zone === 'string' ? d.zone : undefined,
  };
}
