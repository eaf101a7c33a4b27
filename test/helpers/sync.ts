// A gateway enrolled with a (test) cloud and uploading to it, plus cloud-side readers.
import { join } from 'node:path';
import { Agent } from 'undici';
import { enroll, writeCredentials } from '../../sync/credentials.js';
import type { Reading } from '../../gateway/contract/types.js';
import { office, type TestCloud } from './cloud.js';
import { startGateway, tempDir, type TestGateway } from './gateway.js';

/** Sync settings tuned for tests: quick polling and retries. */
export const FAST_SYNC = {
  enabled: true,
  idleMs: 50,
  statusEveryMs: 1000,
  retry: { initialMs: 20, maxMs: 400, openAfterFailures: 2 },
  commands: { pollMs: 200 },
};

/** Enrolls `gatewayId` at the cloud and writes the credentials into `dir` (cloud URL: `via`, e.g. a proxy). */
export async function enrollInto(cloud: TestCloud, dir: string, gatewayId: string, via = cloud.url): Promise<void> {
  const agent = new Agent();
  try {
    const token = await cloud.mintEnrollmentToken('test', gatewayId);
    const creds = await enroll(agent, cloud.url, { token, gatewayId, site: 'test' });
    writeCredentials(join(dir, 'cloud-credentials.json'), { ...creds, cloud: via });
  } finally {
    await agent.close();
  }
}

export async function syncedGateway(
  cloud: TestCloud,
  o: {
    via?: string;
    gatewayId?: string;
    dir?: string;
    sync?: Record<string, unknown>;
    extra?: Record<string, unknown>;
    enroll?: boolean;
  } = {},
): Promise<TestGateway> {
  const dir = o.dir ?? tempDir();
  if (o.enroll !== false) await enrollInto(cloud, dir, o.gatewayId ?? 'gw-1', o.via ?? cloud.url);
  return startGateway({ sync: { ...FAST_SYNC, ...o.sync }, ...o.extra }, dir);
}

export const reading = (i: number, t0 = Date.UTC(2026, 10, 1)): Reading => ({
  ts: t0 + i * 1000,
  device: `dev-${i % 7}`,
  point: `p${i % 3}`,
  value: Math.round(Math.sin(i / 50) * 1000) / 100,
});

export interface CloudReadingRow {
  gateway: string;
  seq: number;
  device: string;
  point: string;
  value: number | null;
}
export interface CloudEventRow {
  seq: number;
  type: string;
  subject: string | null;
}

export async function cloudReadings(cloud: TestCloud, gatewayId = 'gw-1'): Promise<CloudReadingRow[]> {
  const r = await office<{ readings: CloudReadingRow[] }>(
    cloud.url,
    cloud.adminToken,
    `/api/v1/readings?gateway=${gatewayId}&limit=100000`,
  );
  if (r.status !== 200) throw new Error(`cloud readings: HTTP ${r.status}`);
  return r.body.readings;
}

export async function cloudEvents(cloud: TestCloud, gatewayId = 'gw-1'): Promise<CloudEventRow[]> {
  const r = await office<{ events: CloudEventRow[] }>(cloud.url, cloud.adminToken, `/api/v1/events?gateway=${gatewayId}&limit=100000`);
  if (r.status !== 200) throw new Error(`cloud events: HTTP ${r.status}`);
  return r.body.events;
}
