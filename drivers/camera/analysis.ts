// What one camera's detections become: counts per zone and class, debounced into
// transitions; each transition is a snapshot (boxes drawn), a `detection.<class>` event
// when objects enter a zone or `detection.<class>.left` when they leave, and an occupancy
// reading `occupancy.<zone>.<class>` (class names slugged: traffic_light) that rules and dashboards can use like any reading.
import type { DriverContext } from '../../gateway/contract/driver.js';
import type { CameraMetrics } from './metrics.js';
import type { CameraDeviceConfig } from './schema.js';
import type { SnapshotStore } from './snapshots.js';
import { OccupancyTracker, type Transition } from './tracker.js';
import type { DetectionResult, Frame } from '../../models/detector/types.js';
import { compileZones, countByZone, type CompiledZone } from './zones.js';

/** Frames waiting for their detections, per camera; more than this in flight is a bug upstream. */
const MAX_PENDING_FRAMES = 16;

export interface DetectionEventData {
  camera: string;
  device: string;
  zone: string;
  action: 'entered' | 'left';
  count: number;
  previous: number;
  detections: { label: string; confidence: number; box: [number, number, number, number] }[];
  snapshot: string | null;
  snapshotUrl: string | null;
}

export class CameraAnalysis {
  private readonly zones: CompiledZone[];
  private readonly tracker: OccupancyTracker;
  private readonly pending = new Map<number, Frame>();
  events = 0;

  constructor(
    readonly camera: string,
    private readonly cfg: CameraDeviceConfig,
    private readonly ctx: DriverContext<CameraMetrics>,
    private readonly snapshots: SnapshotStore | null,
  ) {
    this.zones = compileZones(cfg);
    this.tracker = new OccupancyTracker(cfg.debounceFrames);
  }

  /** Remembers a frame handed to the detector, for its snapshot. */
  submitted(frame: Frame): void {
    this.pending.set(frame.seq, frame);
    if (this.pending.size > MAX_PENDING_FRAMES) this.pending.delete(this.pending.keys().next().value!);
  }

  occupancy(): Record<string, Record<string, number>> {
    return this.tracker.snapshot();
  }

  async onResult(r: DetectionResult): Promise<void> {
    const frame = this.pending.get(r.seq);
    for (const seq of this.pending.keys()) if (seq <= r.seq) this.pending.delete(seq);
    if (!frame) return;
    const { srcWidth, srcHeight } = frame.letterbox;
    const transitions = this.tracker.observe(countByZone(this.zones, r.detections, srcWidth, srcHeight));
    if (transitions.length === 0) return;
    let snapshot: string | null = null;
    if (this.snapshots && transitions.some((t) => t.count > t.previous)) {
      snapshot = await this.snapshots.save(frame, r.detections).catch((err: Error) => {
        this.ctx.log.warn({ camera: this.camera, err: err.message }, 'snapshot not saved');
        this.ctx.reject('snapshot_failed');
        return null;
      });
    }
    await this.ctx.ingest(
      transitions.map((t) => ({
        ts: r.ts,
        device: this.camera,
        point: `occupancy.${t.zone}.${slug(t.label)}`,
        value: t.count,
        unit: 'count',
      })),
      { until: 'queued' },
    );
    for (const t of transitions) await this.emit(t, t.count > t.previous ? snapshot : null);
  }

  private async emit(t: Transition, snapshot: string | null): Promise<void> {
    const entered = t.count > t.previous;
    const data: DetectionEventData = {
      camera: this.camera,
      device: this.camera,
      zone: t.zone,
      action: entered ? 'entered' : 'left',
      count: t.count,
      previous: t.previous,
      detections: t.detections.map((d) => ({
        label: d.label,
        confidence: round(d.confidence, 3),
        box: d.box.map((v) => Math.round(v)) as [number, number, number, number],
      })),
      snapshot,
      snapshotUrl: snapshot ? `/api/v1/snapshots/${snapshot}` : null,
    };
    this.events++;
    await this.ctx.emitEvent(entered ? `detection.${slug(t.label)}` : `detection.${slug(t.label)}.left`, data, this.camera);
  }
}

/** A class name as an event-type segment: `traffic light` → `traffic_light`. */
const slug = (label: string) => label.toLowerCase().replace(/[^a-z0-9]+/g, '_');

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;
