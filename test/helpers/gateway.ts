// Starts a real gateway in-process on free ports with a fresh DuckDB file in a temp dir.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { parseConfig } from '../../config/site.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/kernel/log.js';
import type { SiteConfig } from '../../config/schema.js';
import { mqtt as mqttDescriptor } from '../../drivers/mqtt/index.js';

export interface TestGateway {
  gw: Gateway;
  config: SiteConfig;
  dir: string;
  mqttPort: number;
  httpUrl: string;
  adminToken: string;
  stop(): Promise<void>;
}

/** Binds port 0 on loopback for a moment to learn a free port (for peers that cannot bind 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'outpost-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `overrides` is merged into a minimal site config (plain object, as YAML would give). */
export async function startGateway(
  overrides: Record<string, unknown> = {},
  dir = tempDir(),
  opts: { logLines?: string[] } = {},
): Promise<TestGateway> {
  const base: Record<string, unknown> = {
    site: 'test',
    dataDir: dir,
    log: { level: process.env.TEST_LOG_LEVEL ?? 'silent' },
    // Generous rate limits: tests that are not about them make many requests in a burst
    // (test/api-security.test.ts sets its own).
    http: { host: '127.0.0.1', port: 0, rateLimit: { authFailures: { max: 1000 }, requests: { max: 1_000_000 } } },
    drivers: { mqtt: { host: '127.0.0.1', port: 0 } },
    // Tests publish fixed historical timestamps; keep retention from deleting them.
    store: { retention: { checkIntervalS: 3600, maxAgeDays: 36500 } },
  };
  const merged = deepMerge(base, overrides);
  const config = parseConfig(stringify(merged), 'test-site.yaml');
  const lines = opts.logLines;
  // Captured lines go through the product's logger (its redaction included), at info or the config's level.
  const level = config.log.level === 'silent' ? 'info' : config.log.level;
  const log = lines
    ? createLogger(level, { stream: { write: (s: string) => void lines.push(s) } })
    : createLogger(config.log.level, { pretty: false });
  const gw = await Gateway.start({ config, log });
  const mqttDriver = gw.supervisor.instanceOf(mqttDescriptor);
  const adminFile = join(dir, 'admin.token');
  let adminToken = '';
  try {
    adminToken = readFileSync(adminFile, 'utf8').trim();
  } catch {
    /* tokens configured explicitly */
  }
  return {
    gw,
    config,
    dir,
    mqttPort: mqttDriver?.ports?.tcp ?? 0,
    httpUrl: `http://127.0.0.1:${gw.api.port}`,
    adminToken,
    async stop() {
      await gw.stop('test done');
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Connects an mqtt.js client; resolves on CONNACK, rejects on refusal or after 5 s. */
export function connect(port: number, opts: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: '127.0.0.1', port, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error('MQTT connect timed out'));
    }, 5000);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.once('error', (err) => {
      clearTimeout(timer);
      client.end(true);
      reject(err);
    });
  });
}

export function publish(client: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())));
}

export function endClient(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(false, {}, () => resolve()));
}

export async function api<T = unknown>(
  base: string,
  path: string,
  token?: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path, {
    method: init.method ?? 'GET',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* metrics are text */
  }
  return { status: res.status, body: body as T };
}

/** Reads one sample's value from Prometheus text, e.g. metric('outpost_rejects_total', {reason: 'invalid_json'}). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      (m[3] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, v] = kv.split('=');
          return [k, v?.replace(/^"|"$/g, '')];
        }),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
