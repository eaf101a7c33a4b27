// The "done when": a looping RTSP stream of bus.jpg (served by GStreamer's RTSP
// server on 127.0.0.1) yields person and bus detection events with snapshots on a running
// gateway; occupancy readings are stored, a rule reacts to a zone, and the camera status
// and snapshot are served by the local API. Also: a camera found through the fake ONVIF
// device is captured from the stream URI the device gives.
import { join } from 'node:path';
import t from 'tap';
import { startFakeOnvif } from './helpers/fake-onvif.js';
import { api, removeDir, startGateway, waitFor } from './helpers/gateway.js';
import { startRtspServer } from './helpers/rtsp-server.js';
import { SHARED_DIR } from './helpers/shared.js';

const SHARED = SHARED_DIR;
const BUS = join(SHARED, 'fixtures', 'images', 'bus.jpg');
const MODEL = join(SHARED, 'models', 'yolox_nano.onnx'); // the fastest of the three on 2 cores

interface DetectionEvent {
  type: string;
  subject: string;
  data: {
    camera: string;
    zone: string;
    action: string;
    count: number;
    detections: { label: string; confidence: number; box: number[] }[];
    snapshot: string | null;
    snapshotUrl: string | null;
  };
}

const cameraDriver = { enabled: true, model: { file: MODEL }, workers: 1 };

t.test('bus.jpg over RTSP: person and bus events with snapshots, occupancy readings, a zone rule', async (t) => {
  const rtsp = await startRtspServer({ image: BUS, fps: 5 });
  t.teardown(() => rtsp.stop());
  const g = await startGateway({
    drivers: { camera: cameraDriver },
    devices: [
      {
        id: 'cam-dock',
        zone: 'dock',
        camera: {
          rtsp: rtsp.url,
          fps: 5,
          debounceFrames: 2,
          zones: [
            {
              id: 'street',
              polygon: [
                [0, 0],
                [1, 0],
                [1, 1],
                [0, 1],
              ],
            },
            {
              id: 'left-kerb',
              polygon: [
                [0, 0.6],
                [0.35, 0.6],
                [0.35, 1],
                [0, 1],
              ],
              classes: ['person'],
            },
          ],
        },
      },
    ],
    rules: [
      {
        id: 'kerb-watch',
        when: { event: { type: 'detection.person', zone: 'left-kerb' } },
        then: [{ alert: { severity: 'high', message: 'person at the kerb on {{device}}' } }],
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  const events = await waitFor(
    async () => {
      const ev = (await api<{ events: DetectionEvent[] }>(g.httpUrl, '/api/v1/events?type=detection.*&limit=100', g.adminToken)).body
        .events;
      const types = new Set(ev.map((e) => `${e.type}@${e.data.zone}`));
      return types.has('detection.person@street') && types.has('detection.bus@street') && types.has('detection.person@left-kerb')
        ? ev
        : undefined;
    },
    'person and bus detection events',
    60_000,
  );

  const bus = events.find((e) => e.type === 'detection.bus' && e.data.zone === 'street')!;
  t.equal(bus.subject, 'cam-dock');
  t.match(bus.data, { camera: 'cam-dock', action: 'entered', count: 1 });
  t.ok(bus.data.detections[0].confidence > 0.8, `bus confidence ${bus.data.detections[0].confidence}`);
  const [x1, y1, x2, y2] = bus.data.detections[0].box as [number, number, number, number];
  t.ok(
    x1 < 80 && y1 > 180 && y1 < 290 && x2 > 760 && y2 > 720 && y2 < 820,
    `bus box in source pixels [${bus.data.detections[0].box}] (fixture: [34,231,798,771])`,
  );
  const people = events.find((e) => e.type === 'detection.person' && e.data.zone === 'street')!;
  t.ok(people.data.count >= 3 && people.data.count <= 4, `people in the street: ${people.data.count} (fixture: 4, one of them at 0.26)`);
  t.equal(
    events.filter((e) => e.type === 'detection.bus' && e.data.zone === 'street').length,
    1,
    'a parked bus is one event, not one per frame',
  );

  // The snapshot the event points at is a JPEG the API serves.
  t.match(bus.data.snapshotUrl, /^\/api\/v1\/snapshots\/cam-dock-\d{13}-[0-9a-f]{8}\.jpg$/);
  const res = await fetch(g.httpUrl + bus.data.snapshotUrl!, { headers: { authorization: `Bearer ${g.adminToken}` } });
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'image/jpeg');
  const jpeg = Buffer.from(await res.arrayBuffer());
  t.same([jpeg[0], jpeg[1]], [0xff, 0xd8]);
  t.equal(
    (await fetch(g.httpUrl + '/api/v1/snapshots/..%2F..%2Fetc%2Fpasswd', { headers: { authorization: `Bearer ${g.adminToken}` } })).status,
    404,
  );

  // Occupancy is a reading like any other.
  const occ = await waitFor(async () => {
    const r = (
      await api<{ readings: { device: string; point: string; value: number }[] }>(
        g.httpUrl,
        '/api/v1/readings?device=cam-dock&limit=100',
        g.adminToken,
      )
    ).body.readings;
    return r.some((x) => x.point === 'occupancy.street.bus') ? r : undefined;
  }, 'occupancy readings');
  t.equal(occ.find((x) => x.point === 'occupancy.street.bus')?.value, 1);

  // The zone rule fired on the kerb zone only.
  const alerts = await waitFor(async () => {
    const a = (await api<{ alerts: { rule: string; message: string }[] }>(g.httpUrl, '/api/v1/alerts', g.adminToken)).body.alerts;
    return a.length > 0 ? a : undefined;
  }, 'the zone rule alert');
  t.match(alerts[0], { rule: 'kerb-watch', message: 'person at the kerb on cam-dock' });

  const cams = (
    await api<{
      cameras: {
        id: string;
        capture: { state: string; sourceWidth: number; sourceHeight: number };
        occupancy: Record<string, Record<string, number>>;
      }[];
    }>(g.httpUrl, '/api/v1/cameras', g.adminToken)
  ).body.cameras;
  t.match(cams[0], { id: 'cam-dock', capture: { state: 'streaming', sourceWidth: 810, sourceHeight: 1080 } });
  t.equal(cams[0].occupancy.street?.bus, 1);
  const metrics = (await api<string>(g.httpUrl, '/metrics')).body;
  t.match(metrics, /outpost_camera_frames_total\{camera="cam-dock"\} [1-9]/);
});

t.test('an ONVIF camera: the stream URI it gives is the one captured', async (t) => {
  const rtsp = await startRtspServer({ image: BUS, fps: 5 });
  t.teardown(() => rtsp.stop());
  const onvif = await startFakeOnvif({ streamUri: rtsp.url, username: 'admin', password: 'secret' });
  t.teardown(() => onvif.close());
  const g = await startGateway({
    drivers: { camera: cameraDriver },
    devices: [
      {
        id: 'cam-onvif',
        zone: 'gate',
        camera: { onvif: { host: '127.0.0.1', port: onvif.port, username: 'admin', password: 'secret', events: false }, debounceFrames: 2 },
      },
    ],
  });
  t.teardown(async () => {
    await g.stop();
    removeDir(g.dir);
  });
  await waitFor(
    async () => {
      const ev = (await api<{ events: DetectionEvent[] }>(g.httpUrl, '/api/v1/events?type=detection.bus&limit=10', g.adminToken)).body
        .events;
      return ev.some((e) => e.subject === 'cam-onvif') ? true : undefined;
    },
    'a bus seen through the ONVIF camera',
    60_000,
  );
  const cams = (await api<{ cameras: { id: string; source: string }[] }>(g.httpUrl, '/api/v1/cameras', g.adminToken)).body.cameras;
  t.equal(
    cams[0].source,
    rtsp.url.replace('rtsp://', 'rtsp://admin:***@'),
    'the stream URI from GetStreamUri, with the camera credentials (redacted here)',
  );
});
