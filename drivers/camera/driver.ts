// The camera driver: for each device with a `camera` section, an RTSP capture (ffmpeg,
// letterboxed to the model's input in C) feeds the shared detector pool (ONNX sessions in
// worker threads; the newest frame per camera wins when the workers are busy), and each
// result goes through that camera's zones and debounce (analysis.ts) to become events,
// occupancy readings and snapshots. ONVIF devices tell us their stream URI and send
// motion/tamper events. A camera that cannot be reached keeps retrying on its own; it
// never stops the others or the gateway.
import { resolve } from 'node:path';
import type { SiteView } from '../../gateway/contract/descriptor.js';
import type { Driver, DriverContext, DriverHealth } from '../../gateway/contract/driver.js';
import type { CameraMetrics } from './metrics.js';
import { storeRejectReason } from '../../gateway/contract/errors.js';
import { DetectorPool } from '../../models/detector/pool.js';
import { CameraAnalysis } from './analysis.js';
import { RtspCapture } from './capture.js';
import { redact } from './ffmpeg-output.js';
import { ffmpegPath } from './letterbox.js';
import { connectOnvif, type OnvifCamera } from './onvif.js';
import type { CameraDriverConfig, CameraDeviceConfig } from './schema.js';
import { SnapshotStore } from './snapshots.js';
import type { DetectionResult, Frame } from '../../models/detector/types.js';

const DRIVER = 'camera';
const ONVIF_TIMEOUT_MS = 5000;

interface CameraRuntime {
  id: string;
  zone: string;
  cfg: CameraDeviceConfig;
  analysis: CameraAnalysis;
  capture: RtspCapture | null;
  onvif: OnvifCamera | null;
  stopEvents: (() => Promise<void>) | null;
  url: string | null;
  lastError: string | null;
  dropped: number;
}

export interface CameraStatus {
  id: string;
  zone: string;
  source: string | null;
  capture: unknown;
  occupancy: Record<string, Record<string, number>>;
  events: number;
  dropped: number;
  lastError: string | null;
}

export interface CameraHealth extends DriverHealth {
  cameras: number;
  streaming: number;
  pool: ReturnType<DetectorPool['stats']> | null;
}

export class CameraDriver implements Driver<CameraHealth> {
  readonly name = DRIVER;
  private ctx: DriverContext<CameraMetrics> | null = null;
  private pool: DetectorPool | null = null;
  private snapshots: SnapshotStore | null = null;
  private readonly cams = new Map<string, CameraRuntime>();
  private stopped = false;

  constructor(
    private readonly cfg: CameraDriverConfig,
    private readonly site: SiteView<CameraDeviceConfig>,
  ) {}

  owns(device: string): boolean {
    return this.cams.has(device);
  }

  async start(ctx: DriverContext<CameraMetrics>): Promise<void> {
    this.ctx = ctx;
    const ffmpeg = ffmpegPath(this.cfg.ffmpeg);
    const m = this.cfg.model;
    this.pool = await DetectorPool.open({
      modelFile: resolve(m.file),
      layout: m.layout,
      ...(m.labels ? { labelsFile: resolve(m.labels) } : {}),
      confidence: m.confidence,
      iou: m.iou,
      maxDetections: m.maxDetections,
      workers: this.cfg.workers,
      intraOpThreads: this.cfg.intraOpThreads,
    });
    if (this.cfg.snapshots.enabled) {
      const s = this.cfg.snapshots;
      this.snapshots = new SnapshotStore({
        dir: resolve(this.site.dataDir, s.dir),
        maxAgeDays: s.maxAgeDays,
        maxTotalMB: s.maxTotalMB,
        quality: s.quality,
        ffmpeg,
      });
    }
    this.pool.onResult((r) => this.onResult(r));
    this.pool.onError((err, camera) => {
      ctx.log.warn({ camera, err: err.message }, 'detection failed for a frame');
      ctx.reject('detect_failed');
    });
    for (const d of this.site.devices) {
      const analysis = new CameraAnalysis(d.id, d.config, ctx, this.snapshots);
      const rt: CameraRuntime = {
        id: d.id,
        zone: d.zone,
        cfg: d.config,
        analysis,
        capture: null,
        onvif: null,
        stopEvents: null,
        url: d.config.rtsp ?? null,
        lastError: null,
        dropped: 0,
      };
      this.cams.set(d.id, rt);
      // Sources come up in the background: an unreachable camera must not hold up the rest.
      void this.startCamera(rt, ffmpeg);
    }
    ctx.log.info({ cameras: this.cams.size, model: m.file, input: this.pool.spec, workers: this.cfg.workers }, 'camera driver started');
  }

  private async startCamera(rt: CameraRuntime, ffmpeg: string): Promise<void> {
    const ctx = this.ctx!;
    let url = rt.url;
    if (!url && rt.cfg.onvif) {
      const o = rt.cfg.onvif;
      const password = o.password ?? (o.passwordEnv ? process.env[o.passwordEnv] : undefined);
      try {
        rt.onvif = await connectOnvif(
          { host: o.host, port: o.port, ...(o.username ? { username: o.username } : {}), ...(password ? { password } : {}) },
          { timeoutMs: ONVIF_TIMEOUT_MS },
        );
        url = withCredentials(await rt.onvif.streamUri(o.profile), o.username, password);
        if (o.events) rt.stopEvents = await this.subscribeEvents(rt);
      } catch (err) {
        rt.lastError = (err as Error).message;
        ctx.log.error({ camera: rt.id, err: rt.lastError }, 'camera: ONVIF setup failed');
        ctx.reject('onvif_error');
        if (!this.stopped) setTimeout(() => void this.startCamera(rt, ffmpeg), 30_000).unref();
        return;
      }
    }
    if (!url || this.stopped) return;
    rt.url = url;
    rt.capture = new RtspCapture({
      camera: rt.id,
      url,
      transport: rt.cfg.transport,
      fps: rt.cfg.fps,
      stallSeconds: rt.cfg.stallSeconds,
      spec: this.pool!.spec,
      ffmpeg,
      metrics: ctx.metrics,
      log: ctx.log,
      onFrame: (f) => this.onFrame(rt, f),
      onState: (up) => ctx.devices.setOnline(rt.id, up, DRIVER, rt.zone),
    });
    rt.capture.start();
  }

  private async subscribeEvents(rt: CameraRuntime): Promise<(() => Promise<void>) | null> {
    const ctx = this.ctx!;
    try {
      return await rt.onvif!.events((e) => {
        const type = e.kind === 'other' ? 'camera.event' : `camera.${e.kind}`;
        void ctx
          .emitEvent(type, { camera: rt.id, device: rt.id, topic: e.topic, state: e.state }, rt.id)
          .catch(() => ctx.reject('store_error'));
      });
    } catch (err) {
      ctx.log.info({ camera: rt.id, err: (err as Error).message }, 'camera offers no ONVIF events');
      return null;
    }
  }

  private onFrame(rt: CameraRuntime, frame: Frame): void {
    rt.analysis.submitted(frame);
    this.pool!.submit(frame);
    // The pool keeps only the newest waiting frame per camera: count what it replaced.
    const dropped = this.pool!.stats().dropped[rt.id] ?? 0;
    if (dropped > rt.dropped) this.ctx!.metrics.cameraFramesDropped.inc({ camera: rt.id, reason: 'detector_busy' }, dropped - rt.dropped);
    rt.dropped = dropped;
  }

  private onResult(r: DetectionResult): void {
    const rt = this.cams.get(r.camera);
    if (!rt) return;
    rt.analysis.onResult(r).catch((err: Error) => {
      this.ctx!.log.warn({ camera: r.camera, err: err.message }, 'detection result not recorded');
      this.ctx!.reject(storeRejectReason(err));
    });
  }

  cameras(): CameraStatus[] {
    const dropped = this.pool?.stats().dropped ?? {};
    return [...this.cams.values()].map((rt) => ({
      id: rt.id,
      zone: rt.zone,
      source: rt.url ? redact(rt.url) : null,
      capture: rt.capture?.status() ?? null,
      occupancy: rt.analysis.occupancy(),
      events: rt.analysis.events,
      dropped: dropped[rt.id] ?? 0,
      lastError: rt.lastError,
    }));
  }

  snapshotPath(id: string): string | null {
    return this.snapshots?.path(id) ?? null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // Unsubscribing (bounded by the ONVIF call timeout) runs alongside the capture stops.
    const unsubscribed = [...this.cams.values()].flatMap((rt) => (rt.stopEvents ? [rt.stopEvents()] : []));
    for (const rt of this.cams.values()) await rt.capture?.stop();
    await Promise.all(unsubscribed);
    await this.pool?.close();
  }

  health(): CameraHealth {
    const up = [...this.cams.values()].filter((c) => c.capture?.status().state === 'streaming').length;
    return { ok: this.pool !== null, cameras: this.cams.size, streaming: up, pool: this.pool?.stats() ?? null };
  }
}

/** ONVIF stream URIs come without credentials; RTSP servers usually want the same ones. */
function withCredentials(url: string, username?: string, password?: string): string {
  if (!username) return url;
  const u = new URL(url);
  if (u.username) return url;
  u.username = username;
  if (password) u.password = password;
  return u.toString();
}
