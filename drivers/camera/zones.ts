// Zones turn boxes into counts: a detection is in a zone when its bottom-centre point (where
// a person or vehicle stands) lies inside the zone's polygon, its class is one the zone
// counts, and it passes the confidence and size floors. A camera without zones has one
// zone, "all", covering the whole image.
import type { CameraDeviceConfig } from './schema.js';
import type { Detection } from '../../models/detector/types.js';

export interface CompiledZone {
  id: string;
  /** Polygon vertices as fractions of the image (x, y pairs). */
  polygon: readonly (readonly [number, number])[];
  classes: ReadonlySet<string> | null;
  minConfidence: number;
  minArea: number;
}

export const WHOLE_IMAGE = 'all';

export function compileZones(cam: CameraDeviceConfig): CompiledZone[] {
  const base = { classes: cam.classes ? new Set(cam.classes) : null, minConfidence: cam.minConfidence, minArea: cam.minArea };
  if (cam.zones.length === 0) {
    return [
      {
        id: WHOLE_IMAGE,
        polygon: [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 1],
        ],
        ...base,
      },
    ];
  }
  return cam.zones.map((z) => ({
    id: z.id,
    polygon: z.polygon.map(([x, y]) => [x, y] as const),
    classes: z.classes ? new Set(z.classes) : base.classes,
    minConfidence: z.minConfidence ?? base.minConfidence,
    minArea: z.minArea ?? base.minArea,
  }));
}

/** Even-odd ray casting; points exactly on an edge may fall either way. */
export function pointInPolygon(x: number, y: number, poly: readonly (readonly [number, number])[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function inZone(z: CompiledZone, d: Detection, srcWidth: number, srcHeight: number): boolean {
  if (d.confidence < z.minConfidence) return false;
  if (z.classes && !z.classes.has(d.label)) return false;
  const [x1, y1, x2, y2] = d.box;
  if (z.minArea > 0 && ((x2 - x1) * (y2 - y1)) / (srcWidth * srcHeight) < z.minArea) return false;
  return pointInPolygon((x1 + x2) / 2 / srcWidth, y2 / srcHeight, z.polygon);
}

/** zone → class → the detections counted there, for one frame. */
export function countByZone(
  zones: readonly CompiledZone[],
  dets: readonly Detection[],
  srcWidth: number,
  srcHeight: number,
): Map<string, Map<string, Detection[]>> {
  const out = new Map<string, Map<string, Detection[]>>();
  for (const z of zones) {
    const byClass = new Map<string, Detection[]>();
    for (const d of dets) {
      if (!inZone(z, d, srcWidth, srcHeight)) continue;
      let list = byClass.get(d.label);
      if (!list) byClass.set(d.label, (list = []));
      list.push(d);
    }
    out.set(z.id, byClass);
  }
  return out;
}
