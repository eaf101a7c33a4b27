// Topic convention: devices/{site}/{zone}/{device}/telemetry[/{point}], .../status,
// and .../command (gateway → device).

export type TopicKind = 'telemetry' | 'status' | 'command';

export interface DeviceTopic {
  site: string;
  zone: string;
  device: string;
  kind: TopicKind;
  /** Set for `.../telemetry/{point}` (a plain value for one point). */
  point?: string;
}

const KINDS = new Set<string>(['telemetry', 'status', 'command']);

/** Parses a device topic; returns null for anything outside the convention. */
export function parseDeviceTopic(topic: string): DeviceTopic | null {
  const parts = topic.split('/');
  if (parts[0] !== 'devices' || parts.length < 5 || parts.length > 6) return null;
  const [, site, zone, device, kind, point] = parts as [string, string, string, string, string, string | undefined];
  if (!site || !zone || !device || !KINDS.has(kind)) return null;
  if (point !== undefined && (kind !== 'telemetry' || point === '')) return null;
  return { site, zone, device, kind: kind as TopicKind, ...(point !== undefined ? { point } : {}) };
}

export const devicePrefix = (site: string, zone: string, device: string) => `devices/${site}/${zone}/${device}/`;
export const commandTopic = (site: string, zone: string, device: string) => devicePrefix(site, zone, device) + 'command';
