// Config schema of the camera driver: the detector (model, thresholds, worker threads)
// and snapshots under drivers.camera, and per device a `camera` section: where the stream
// comes from (an RTSP URL, or an ONVIF device that tells us), how many frames a second to
// analyse, and the zones that turn boxes into events. Part of config/schema.ts.
import { Type, type Static } from '@sinclair/typebox';
import { Id, Section, Strict, StringEnum } from '../../gateway/kernel/schema-kit.js';
import { LAYOUTS } from '../../models/detector/types.js';

const Fraction = (dflt: number, description: string) => Type.Number({ minimum: 0, maximum: 1, default: dflt, description });

export const CameraDriverSchema = Section(
  {
    enabled: Type.Boolean({ default: false }),
    model: Section(
      {
        file: Type.String({
          default: 'models/yolov8n_int8.onnx',
          description: 'ONNX detector (relative to the working directory); see models/README.md',
        }),
        layout: StringEnum(LAYOUTS, {
          default: 'auto',
          description:
            'Output layout: yolov8 ([1,4+C,N], also YOLO11), yolov5 ([1,N,5+C]), yolox ([1,N,5+C] with grid decode); auto reads it from the model',
        }),
        labels: Type.Optional(Type.String({ description: 'Class names, one per line (default: the 80 COCO names)' })),
        confidence: Fraction(0.25, 'Detections below this are discarded before NMS'),
        iou: Fraction(0.45, 'Class-aware NMS overlap threshold'),
        maxDetections: Type.Integer({ minimum: 1, maximum: 1000, default: 300 }),
      },
      'The object detector',
    ),
    workers: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 2,
      description: 'Detector worker threads (one ONNX session each); 4-core ARM: 2',
    }),
    intraOpThreads: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'ONNX Runtime threads per session' }),
    ffmpeg: Type.Optional(
      Type.String({ description: 'ffmpeg binary (default: ffmpeg on PATH, else the one from @ffmpeg-installer/ffmpeg)' }),
    ),
    snapshots: Section(
      {
        enabled: Type.Boolean({ default: true }),
        dir: Type.String({ default: 'snapshots', description: 'Relative to dataDir' }),
        maxAgeDays: Type.Number({ exclusiveMinimum: 0, default: 7 }),
        maxTotalMB: Type.Number({ exclusiveMinimum: 0, default: 512, description: 'Oldest snapshots are deleted first past this' }),
        quality: Type.Integer({ minimum: 2, maximum: 31, default: 5, description: 'ffmpeg JPEG quality scale (2 best, 31 worst)' }),
      },
      'JPEGs of frames with detections, boxes drawn, referenced from their events',
    ),
  },
  'Cameras: ONVIF discovery, RTSP capture, YOLO detection in worker threads',
);
export type CameraDriverConfig = Static<typeof CameraDriverSchema>;

/** A point of a zone polygon, as fractions of the image width and height (0..1). */
const Point = Type.Tuple([Type.Number({ minimum: 0, maximum: 1 }), Type.Number({ minimum: 0, maximum: 1 })]);

const Zone = Strict({
  id: Id('Zone id: the event data.zone and the occupancy point name'),
  polygon: Type.Array(Point, {
    minItems: 3,
    description: '[[x, y], ...] as fractions of the image (0..1); a box is in the zone when its bottom centre is',
  }),
  classes: Type.Optional(
    Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "Classes counted here (default: the camera's)" }),
  ),
  minConfidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  minArea: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Smallest box, as a fraction of the image area' })),
});
export type ZoneConfig = Static<typeof Zone>;

const Onvif = Strict({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 80 }),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String({ description: 'Or set passwordEnv' })),
  passwordEnv: Type.Optional(Type.String({ description: 'Environment variable holding the password' })),
  profile: Type.Optional(Type.String({ description: 'Media profile token (default: the first)' })),
  events: Type.Boolean({ default: true, description: 'Subscribe to ONVIF events (motion, tamper) when offered' }),
});

export const CameraDeviceSchema = Strict({
  rtsp: Type.Optional(Type.String({ pattern: '^rtsps?://', description: 'Stream URL (credentials may be inline); or give `onvif`' })),
  onvif: Type.Optional(Onvif),
  transport: StringEnum(['tcp', 'udp'] as const, { default: 'tcp' }),
  fps: Type.Number({ exclusiveMinimum: 0, maximum: 30, default: 5, description: 'Frames analysed per second' }),
  stallSeconds: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'No frame for this long: the stream is restarted' }),
  classes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Classes reported (default: all)' })),
  minConfidence: Fraction(0.4, 'Detections below this are ignored for events'),
  minArea: Fraction(0, 'Smallest box reported, as a fraction of the image area'),
  debounceFrames: Type.Integer({
    minimum: 1,
    maximum: 100,
    default: 3,
    description: 'An object must be seen (or gone) this many frames in a row before it enters (leaves) a zone',
  }),
  zones: Type.Array(Zone, { default: [], description: 'Without zones the whole image is one zone named "all"' }),
});
export type CameraDeviceConfig = Static<typeof CameraDeviceSchema>;
