// The detector pool: worker threads running the real YOLOX-Nano (the fastest of the three
// shared models, to keep this quick) on bus.jpg frames from two cameras. Results carry
// their camera and seq; a flooded camera keeps only its newest waiting frame and counts
// the rest as drops; every frame is released exactly once (so a producer can reuse its
// buffer); frames cross threads shared or transferred, never silently copied.
import { join } from 'node:path';
import t from 'tap';
import type { DetectionResult, Frame } from '../models/detector/types.js';
import { DetectorPool } from '../models/detector/pool.js';
import { frameOf, letterboxImage } from '../drivers/camera/still-frames.js';
import { SHARED_DIR } from './helpers/shared.js';

const SHARED = SHARED_DIR;
const MODEL = join(SHARED, 'models/yolox_nano.onnx');
const BUS = join(SHARED, 'fixtures/images/bus.jpg');
const WORKERS = 2;
const OPTS = {
  modelFile: MODEL,
  layout: 'auto',
  confidence: 0.25,
  iou: 0.45,
  maxDetections: 300,
  workers: WORKERS,
  intraOpThreads: 1,
} as const;

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

t.test('pool: results per camera, newest-frame backpressure, exact accounting', async (t) => {
  const pool = await DetectorPool.open(OPTS);
  t.teardown(() => pool.close());
  t.same(pool.spec, { width: 416, height: 416, pad: 'top-left', channels: 'bgr', padValue: 114 });
  t.equal(pool.labels.length, 80);
  const bus = await letterboxImage(BUS, pool.spec, { shared: true });
  const results: DetectionResult[] = [];
  const errors: string[] = [];
  const released: string[] = [];
  pool.onResult((r) => results.push(r));
  pool.onRelease((f) => released.push(`${f.camera}#${f.seq}`));
  pool.onError((err, camera, seq) => errors.push(`${camera}#${seq}: ${err.message}`));

  // Two cameras, one frame each, then one more each: every frame runs (never more than 2 in flight).
  for (const seq of [1, 2]) {
    pool.submit(frameOf(bus, 'cam-a', seq));
    pool.submit(frameOf(bus, 'cam-b', seq));
    await pool.idle();
  }
  t.same(results.map((r) => `${r.camera}#${r.seq}`).sort(), ['cam-a#1', 'cam-a#2', 'cam-b#1', 'cam-b#2']);
  for (const r of results) {
    t.same(
      r.detections.map((d) => d.label).sort(),
      ['bus', 'person', 'person', 'person', 'person'],
      `${r.camera}#${r.seq}: bus.jpg's detections`,
    );
    t.ok(r.timings.inferenceMs > 0 && r.timings.preprocessMs >= 0 && r.timings.postprocessMs >= 0 && r.timings.queueMs >= 0, 'timings');
  }
  t.same(pool.stats(), { submitted: 4, completed: 4, failed: 0, dropped: {}, inFlight: 0, waiting: 0, copied: 0 });

  // Flood one camera with 20 frames at once: 2 start at once, 1 waits, and each newer one
  // replaces the waiting one, so seqs 1, 2 and 20 run and 17 are dropped.
  results.length = 0;
  for (let seq = 1; seq <= 20; seq++) pool.submit(frameOf(bus, 'flood', seq));
  t.match(pool.stats(), { inFlight: WORKERS, waiting: 1, dropped: { flood: 17 } });
  t.same(
    released.slice(4),
    Array.from({ length: 17 }, (_, i) => `flood#${i + 3}`),
    'a replaced frame is released at once',
  );
  await pool.idle();
  const s = pool.stats();
  t.ok(results.length <= WORKERS + 1, `completed ${results.length} ≤ workers + 1`);
  t.same(
    results.map((r) => r.seq).sort((a, b) => a - b),
    [1, 2, 20],
    'the newest waiting frame wins',
  );
  t.equal(s.submitted, s.completed + sum(s.dropped) + s.failed, 'submitted = completed + dropped');
  t.same(s, { submitted: 24, completed: 7, failed: 0, dropped: { flood: 17 }, inFlight: 0, waiting: 0, copied: 0 });
  t.same(errors, []);
  t.equal(released.length, s.submitted, 'every frame is released exactly once');
  t.equal(new Set(released).size, released.length);
});

t.test('pool: cameras waiting are served oldest first; a busy camera cannot starve another', async (t) => {
  const pool = await DetectorPool.open({ ...OPTS, workers: 1 });
  t.teardown(() => pool.close());
  const bus = await letterboxImage(BUS, pool.spec, { shared: true });
  const order: string[] = [];
  pool.onResult((r) => order.push(`${r.camera}#${r.seq}`));
  pool.submit(frameOf(bus, 'a', 1)); // runs
  pool.submit(frameOf(bus, 'b', 1)); // waits first
  pool.submit(frameOf(bus, 'a', 2)); // waits second
  pool.submit(frameOf(bus, 'a', 3)); // replaces a#2, keeps a's place behind b
  await pool.idle();
  t.same(order, ['a#1', 'b#1', 'a#3']);
  t.same(pool.stats().dropped, { a: 1 });
  // Close: the frame in flight finishes and is delivered, the waiting one is dropped and released.
  const released: string[] = [];
  pool.onRelease((f) => released.push(`${f.camera}#${f.seq}`));
  pool.submit(frameOf(bus, 'a', 4));
  pool.submit(frameOf(bus, 'b', 2));
  await pool.close();
  t.same(order, ['a#1', 'b#1', 'a#3', 'a#4']);
  t.same(released.sort(), ['a#4', 'b#2']);
  t.match(pool.stats(), { submitted: 6, completed: 4, dropped: { a: 1, b: 1 }, inFlight: 0, waiting: 0 });
});

t.test('pool: ArrayBuffer frames are transferred, views into larger buffers copied, bad frames refused', async (t) => {
  const pool = await DetectorPool.open({ ...OPTS, workers: 1 });
  t.teardown(() => pool.close());
  const bus = await letterboxImage(BUS, pool.spec);
  const got: DetectionResult[] = [];
  pool.onResult((r) => got.push(r));
  const owned: Frame = { ...bus, data: bus.data.slice() };
  pool.submit(owned);
  t.equal(owned.data.byteLength, 0, "the sender's view is detached: moved, not copied");
  const big = new Uint8Array(bus.data.length + 16);
  big.set(bus.data, 16);
  pool.submit({ ...bus, seq: 1, data: big.subarray(16) });
  await pool.idle();
  t.equal(big.byteLength, bus.data.length + 16, 'a view into a larger buffer is left alone');
  t.equal(got.length, 2);
  t.ok(got.every((r) => r.detections.some((d) => d.label === 'bus')));
  t.equal(pool.stats().copied, 1);
  t.throws(() => pool.submit({ ...bus, width: 640 }), { message: /frame cam#0 is 640×416 bgr .* the model wants 416×416 bgr/ });
  t.throws(() => pool.submit({ ...bus, channels: 'rgb' }), { message: /wants 416×416 bgr/ });
  await pool.close();
  t.throws(() => pool.submit(bus), { message: 'detector pool is closed' });
});

t.test('pool: a bad model path fails at open, naming the path', async (t) => {
  const missing = join(SHARED, 'models/does-not-exist.onnx');
  await t.rejects(DetectorPool.open({ ...OPTS, modelFile: missing }), { message: `model file ${missing} not found` });
  await t.rejects(DetectorPool.open({ ...OPTS, workers: 0 }), { message: /workers must be a positive integer/ });
});
