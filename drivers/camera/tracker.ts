// Debounced occupancy per (zone, class). Detectors flicker: a person standing still is seen
// in most frames, not all, and a shadow is "a person" for a frame. The count a zone reports
// changes only when a new raw count has been seen in `frames` consecutive frames; each
// change is one transition — objects entering (count up) or leaving (count down) — so a
// person standing still is one event, not five a second.
import type { Detection } from '../../models/detector/types.js';

export interface Transition {
  zone: string;
  label: string;
  previous: number;
  count: number;
  /** The detections of the frame that settled the new count. */
  detections: Detection[];
}

interface Track {
  stable: number;
  pendingValue: number;
  pendingFrames: number;
}

export class OccupancyTracker {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly frames: number) {}

  /**
   * Feeds one frame's counts (zone → class → detections). Classes that a zone has seen
   * before but are absent now count as 0. Returns the settled changes.
   */
  observe(counts: ReadonlyMap<string, ReadonlyMap<string, Detection[]>>): Transition[] {
    const out: Transition[] = [];
    const seen = new Set<string>();
    for (const [zone, byClass] of counts) {
      for (const [label, dets] of byClass) {
        const key = `${zone}\u0000${label}`;
        seen.add(key);
        this.step(key, zone, label, dets, out);
      }
    }
    for (const key of this.tracks.keys()) {
      if (seen.has(key)) continue;
      const [zone, label] = key.split('\u0000') as [string, string];
      if (!counts.has(zone)) continue;
      this.step(key, zone, label, [], out);
    }
    return out;
  }

  /** Current settled counts, for `status` and tests. */
  snapshot(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [key, t] of this.tracks) {
      const [zone, label] = key.split('\u0000') as [string, string];
      (out[zone] ??= {})[label] = t.stable;
    }
    return out;
  }

  private step(key: string, zone: string, label: string, dets: Detection[], out: Transition[]): void {
    let t = this.tracks.get(key);
    if (!t) this.tracks.set(key, (t = { stable: 0, pendingValue: 0, pendingFrames: 0 }));
    const n = dets.length;
    if (n === t.stable) {
      t.pendingFrames = 0;
      if (n === 0) this.tracks.delete(key); // nothing to remember: bounded by what is in view
      return;
    }
    if (n === t.pendingValue && t.pendingFrames > 0) t.pendingFrames++;
    else {
      t.pendingValue = n;
      t.pendingFrames = 1;
    }
    if (t.pendingFrames < this.frames) return;
    out.push({ zone, label, previous: t.stable, count: n, detections: dets });
    t.stable = n;
    t.pendingFrames = 0;
    if (n === 0) this.tracks.delete(key);
  }
}
