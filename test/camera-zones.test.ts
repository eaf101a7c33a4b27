// Zones, debounced occupancy and snapshots: the pure parts of the camera driver (plus the
// real ffmpeg for JPEG encoding).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../config/site.js';
import { redact } from '../drivers/camera/ffmpeg-output.js';
import { ffmpegPath, letterboxFor } from '../drivers/camera/letterbox.js';
import { SnapshotStore, drawBoxes } from '../drivers/camera/snapshots.js';
import { OccupancyTracker } from '../drivers/camera/tracker.js';
import type { Detection, Frame, InputSpec } from '../models/detector/types.js';
import { compileZones, countByZone, inZone, pointInPolygon, WHOLE_IMAGE } from '../drivers/camera/zones.js';
import { removeDir, tempDir } from './helpers/gateway.js';

const det = (label: string, box: [number, number, number, number], confidence = 0.9, classId = label === 'person' ? 0 : 2): Detection => ({
  classId,
  label,
  confidence,
  box,
});
const cam = (extra: Record<string, unknown> = {}) => ({
  transport: 'tcp' as const,
  fps: 5,
  stallSeconds: 10,
  minConfidence: 0.4,
  minArea: 0,
  debounceFrames: 3,
  zones: [],
  ...extra,
});

t.test('point in polygon, including a concave one', async (t) => {
  const l = [
    [0, 0],
    [1, 0],
    [1, 0.5],
    [0.5, 0.5],
    [0.5, 1],
    [0, 1],
  ] as const; // an L shape
  t.ok(pointInPolygon(0.25, 0.75, l));
  t.ok(pointInPolygon(0.75, 0.25, l));
  t.notOk(pointInPolygon(0.75, 0.75, l), 'the notch is outside');
  t.notOk(pointInPolygon(1.5, 0.25, l));
});

t.test('a box is in a zone by its bottom centre, class, confidence and size', async (t) => {
  const [z] = compileZones(
    cam({
      zones: [
        {
          id: 'dock',
          polygon: [
            [0, 0.5],
            [0.5, 0.5],
            [0.5, 1],
            [0, 1],
          ],
          classes: ['person'],
          minArea: 0.01,
        },
      ],
    }),
  );
  const W = 1000,
    H = 1000;
  t.ok(inZone(z, det('person', [100, 100, 200, 800]), W, H), 'feet at (0.15, 0.8): in, though the head is outside');
  t.notOk(inZone(z, det('person', [100, 100, 200, 400]), W, H), 'feet at (0.15, 0.4): out');
  t.notOk(inZone(z, det('car', [100, 600, 200, 800]), W, H), 'not a class of this zone');
  t.notOk(inZone(z, det('person', [100, 600, 200, 800], 0.3), W, H), 'below the camera minConfidence');
  t.notOk(inZone(z, det('person', [100, 750, 150, 800]), W, H), 'smaller than 1% of the image');
  const [all] = compileZones(cam());
  t.equal(all.id, WHOLE_IMAGE);
  t.ok(inZone(all, det('car', [0, 0, 1000, 999]), W, H), 'no zones: the whole image, any class');
});

t.test('occupancy changes only after N frames in a row; one event per change, not per frame', async (t) => {
  const zones = compileZones(cam());
  const tr = new OccupancyTracker(3);
  const frame = (n: number) =>
    countByZone(
      zones,
      Array.from({ length: n }, (_, i) => det('person', [i * 10, 0, i * 10 + 5, 100])),
      1000,
      1000,
    );
  const seq = [1, 1, 1, 1, 1, 0, 1, 1, 1, 2, 2, 0, 0, 0, 0].map((n) => tr.observe(frame(n)).map((x) => `${x.previous}->${x.count}`));
  t.same(
    seq,
    [[], [], ['0->1'], [], [], [], [], [], [], [], [], [], [], ['1->0'], []],
    'a one-frame gap and a two-frame blip change nothing',
  );
  t.same(tr.snapshot(), {}, 'an empty zone keeps no state');
  const two = new OccupancyTracker(2);
  t.same(
    [2, 2, 3, 3, 1, 1].map((n) => two.observe(frame(n)).map((x) => `${x.previous}->${x.count}`)),
    [[], ['0->2'], [], ['2->3'], [], ['3->1']],
  );
  t.equal(two.snapshot().all?.person, 1);
});

t.test('snapshots: boxes drawn in frame pixels, JPEG of the picture area, pruned by size and age', async (t) => {
  const dir = tempDir();
  t.teardown(() => removeDir(dir));
  const spec: InputSpec = { width: 64, height: 64, pad: 'center', channels: 'rgb', padValue: 114 };
  const lb = letterboxFor(100, 50, spec); // 64×32 picture, bars top and bottom
  const frame: Frame = {
    camera: 'cam-1',
    ts: 1_700_000_000_000,
    seq: 1,
    width: 64,
    height: 64,
    channels: 'rgb',
    letterbox: lb,
    data: new Uint8Array(64 * 64 * 3).fill(114),
  };
  const drawn = drawBoxes(frame, [det('person', [10, 10, 50, 40])]);
  const at = (x: number, y: number) => Array.from(drawn.slice((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
  const x1 = Math.round(10 * lb.scale + lb.padLeft),
    y1 = Math.round(10 * lb.scale + lb.padTop);
  t.same(at(x1, y1), [255, 56, 56], 'the box corner is drawn at the mapped position');
  t.same(at(x1 + 5, y1 + 5), [114, 114, 114], 'inside the box is untouched');
  t.equal(frame.data[(y1 * 64 + x1) * 3], 114, 'the frame itself is not modified');

  const store = new SnapshotStore({ dir, maxAgeDays: 1, maxTotalMB: 1, quality: 5, ffmpeg: ffmpegPath() });
  const id = await store.save(frame, [det('person', [10, 10, 50, 40])], frame.ts);
  t.match(id, /^cam-1-1700000000000-[0-9a-f]{8}\.jpg$/);
  const jpeg = readFileSync(store.path(id)!);
  t.same([jpeg[0], jpeg[1]], [0xff, 0xd8], 'a JPEG');
  t.equal(store.path('../etc/passwd'), null);
  t.equal(store.path('cam-1-1700000000000-00000000.jpg'), null, 'an unknown id');
  t.equal(
    new SnapshotStore({ dir, maxAgeDays: 1, maxTotalMB: 1, quality: 5, ffmpeg: ffmpegPath() }).count,
    1,
    'found again after a restart',
  );
  t.equal(store.prune(frame.ts + 2 * 86_400_000), 1, 'older than maxAgeDays');
  t.equal(store.count, 0);
  const tiny = new SnapshotStore({ dir: join(dir, 'tiny'), maxAgeDays: 1, maxTotalMB: 1e-9, quality: 5, ffmpeg: ffmpegPath() });
  await tiny.save(frame, []);
  t.equal(tiny.count, 0, 'over the size limit: the oldest (here: the only) snapshot goes');
});

t.test('camera config: one source, unique zone ids, one password form, errors located', async (t) => {
  const site = (camera: Record<string, unknown>) => stringify({ site: 's', devices: [{ id: 'cam', zone: 'z', camera }] });
  const poly = [
    [0, 0],
    [1, 0],
    [1, 1],
  ];
  t.throws(() => parseConfig(site({ fps: 2 }), 'c.yaml'), /c\.yaml:\d+:\d+ devices\[0\]\.camera: give exactly one source/);
  t.throws(() => parseConfig(site({ rtsp: 'rtsp://h/s', onvif: { host: 'h' } }), 'c.yaml'), /give exactly one source/);
  t.throws(
    () =>
      parseConfig(
        site({
          rtsp: 'rtsp://h/s',
          zones: [
            { id: 'a', polygon: poly },
            { id: 'a', polygon: poly },
          ],
        }),
        'c.yaml',
      ),
    /zones\[1\]\.id: zone id "a" is used twice/,
  );
  t.throws(
    () => parseConfig(site({ onvif: { host: 'h', password: 'x', passwordEnv: 'P' } }), 'c.yaml'),
    /camera\.onvif: give password or passwordEnv, not both/,
  );
  t.throws(() => parseConfig(site({ rtsp: 'http://h/s' }), 'c.yaml'), /camera\.rtsp/);
  t.throws(
    () =>
      parseConfig(
        site({
          rtsp: 'rtsp://h/s',
          zones: [
            {
              id: 'a',
              polygon: [
                [0, 0],
                [1.5, 0],
                [1, 1],
              ],
            },
          ],
        }),
        'c.yaml',
      ),
    /polygon/,
  );
  const ok = parseConfig(site({ rtsp: 'rtsp://h/s' }), 'c.yaml').devices[0].camera!;
  t.match(ok, { transport: 'tcp', fps: 5, stallSeconds: 10, minConfidence: 0.4, debounceFrames: 3, zones: [] }, 'defaults');
});

t.test('passwords in URLs are redacted wherever they appear, the user name kept', async (t) => {
  t.equal(redact('rtsp://admin:s3cr:et@10.0.0.1:554/s'), 'rtsp://admin:***@10.0.0.1:554/s');
  t.equal(
    redact('[tcp] Opening rtsp://u:p@h/x failed; retry rtsps://a:b@g/y'),
    '[tcp] Opening rtsp://u:***@h/x failed; retry rtsps://a:***@g/y',
  );
  t.equal(redact('rtsp://user@h/s'), 'rtsp://user@h/s', 'no password, nothing to hide');
});
