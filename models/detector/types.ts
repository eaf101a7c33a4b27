// What detection takes and gives: letterboxed frames in, boxes out. The camera driver
// (capture, zones, events) builds on these; models/ itself imports nothing else of the
// project, so a detector can be used and tested on its own.

/** Output layouts a model may have (auto: read it from the model). */
export const LAYOUTS = ['auto', 'yolov8', 'yolov5', 'yolox'] as const;
export type ModelLayout = (typeof LAYOUTS)[number];

/** How a model wants its input: ffmpeg letterboxes to this in C, so JS never resizes. */
export interface InputSpec {
  /** Model input width and height (square for every model we ship, but not assumed). */
  width: number;
  height: number;
  /** Ultralytics: image centred in the padding; YOLOX: image at the top-left. */
  pad: 'center' | 'top-left';
  /** Byte order of each pixel in the frame buffer. */
  channels: 'rgb' | 'bgr';
  /** Padding colour value (114 for both families). */
  padValue: number;
}

/** Where the source image sits in the letterboxed frame: source = (frame − pad) / scale. */
export interface Letterbox {
  srcWidth: number;
  srcHeight: number;
  scale: number;
  padLeft: number;
  padTop: number;
}

/** One decoded frame at model input size, HWC uint8 in `spec.channels` order. */
export interface Frame {
  camera: string;
  /** Capture time (ms since epoch), stamped when the last byte of the frame arrived. */
  ts: number;
  /** Sequence number per camera capture session (drops show as gaps). */
  seq: number;
  width: number;
  height: number;
  channels: 'rgb' | 'bgr';
  letterbox: Letterbox;
  /** width × height × 3 bytes. Backed by a SharedArrayBuffer or a transferable ArrayBuffer. */
  data: Uint8Array;
}

/** One detection in SOURCE image pixels (x1, y1, x2, y2), clipped to the image. */
export interface Detection {
  classId: number;
  label: string;
  confidence: number;
  box: [number, number, number, number];
}

/** Per-frame time split, ms (what the detect bench prints). */
export interface FrameTimings {
  queueMs: number;
  preprocessMs: number;
  inferenceMs: number;
  postprocessMs: number;
}

export interface DetectionResult {
  camera: string;
  ts: number;
  seq: number;
  detections: Detection[];
  timings: FrameTimings;
}
