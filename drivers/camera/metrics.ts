// The camera driver's own metrics: capture (frames, fps, latency, reconnects, up) and
// frames dropped before detection.
import type { MetricFactory } from '../../gateway/kernel/metrics.js';

export function cameraMetrics(f: MetricFactory) {
  return {
    cameraFrames: f.counter('outpost_camera_frames_total', 'Letterboxed frames delivered by capture, by camera', ['camera']),
    cameraFps: f.gauge('outpost_camera_fps', 'Frames per second delivered over the last 5 s, by camera', ['camera']),
    cameraFrameLatency: f.histogram(
      'outpost_camera_frame_latency_seconds',
      "Time from a frame's first byte on ffmpeg's stdout to its onFrame call (pipe transfer plus event-loop delay; excludes network and decode)",
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    ),
    cameraReconnects: f.counter('outpost_camera_reconnects_total', 'Capture restarts, by camera and reason (exit, stall, error)', [
      'camera',
      'reason',
    ]),
    cameraUp: f.gauge('outpost_camera_up', '1 while frames flow from a camera', ['camera']),
    cameraFramesDropped: f.counter('outpost_camera_frames_dropped_total', 'Frames dropped before detection, by camera and reason', [
      'camera',
      'reason',
    ]),
  };
}
export type CameraMetrics = ReturnType<typeof cameraMetrics>;
