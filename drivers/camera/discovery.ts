// WS-Discovery for ONVIF cameras: a Probe over SOAP-over-UDP to the multicast group
// (239.255.255.250:3702) on every IPv4 interface, and/or unicast to given addresses, then
// the ProbeMatches that arrive before the timeout, deduplicated. Written on node:dgram
// because the `onvif` package's Discovery only sends to the multicast group on the
// default interface (no unicast, so no loopback tests and no routed subnets).
import { randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

const WS_DISCOVERY_GROUP = '239.255.255.250';
const WS_DISCOVERY_PORT = 3702;

export interface DiscoveredCamera {
  /** The device service URL (XAddr) to connect to; the one on the answering address when there are several. */
  address: string;
  host: string;
  port: number;
  /** Every XAddr the device listed. */
  xaddrs: string[];
  /** Endpoint reference, e.g. urn:uuid:…; stable per device. */
  urn: string;
  /** Device types without prefixes, e.g. NetworkVideoTransmitter, Device. */
  types: string[];
  scopes: {
    name?: string;
    hardware?: string;
    /** Location scopes as paths, e.g. "country/de, city/Berlin". */
    location?: string;
    /** ONVIF profiles claimed in scopes, e.g. Streaming (S), T. */
    profiles: string[];
    all: string[];
  };
  /** The IP the answer came from. */
  from: string;
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Unicast targets (port 3702 unless given). */
  targets?: { host: string; port?: number }[];
  /** Also probe the multicast group (default: only when no targets are given). */
  multicast?: boolean;
}

// Two probes: NetworkVideoTransmitter is what Profile S cameras match; tds:Device is what
// every ONVIF device must match (some NVRs and encoders answer only that).
const PROBE_TYPES = [
  { type: 'dn:NetworkVideoTransmitter', ns: 'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"' },
  { type: 'tds:Device', ns: 'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"' },
];

function probeMessage(messageId: string, { type, ns }: (typeof PROBE_TYPES)[number]): Buffer {
  return Buffer.from(
    '<?xml version="1.0" encoding="UTF-8"?>' +
      '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
      `xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" ${ns}>` +
      `<s:Header><a:MessageID>${messageId}</a:MessageID><a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>` +
      '<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header>' +
      `<s:Body><d:Probe><d:Types>${type}</d:Types></d:Probe></s:Body></s:Envelope>`,
  );
}

const unescXml = (s: string) =>
  s.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);

function xmlText(xml: string, name: string): string | undefined {
  const m = new RegExp(`<(?:[\\w.-]+:)?${name}\\b[^>]*>([^<]*)</(?:[\\w.-]+:)?${name}>`).exec(xml);
  return m ? unescXml(m[1].trim()) : undefined;
}

const words = (s: string | undefined) => (s ?? '').split(/\s+/).filter(Boolean);

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** onvif://www.onvif.org/<kind>/<value…> scopes → name, hardware, location, profiles. */
export function parseScopes(all: string[]): DiscoveredCamera['scopes'] {
  const out: DiscoveredCamera['scopes'] = { profiles: [], all };
  const locations: string[] = [];
  for (const scope of all) {
    const m = /^onvif:\/\/www\.onvif\.org\/([^/]+)\/(.+)$/i.exec(scope);
    if (!m) continue;
    const kind = m[1].toLowerCase();
    const value = m[2].split('/').map(decode).join('/');
    if (kind === 'name') out.name = value;
    else if (kind === 'hardware') out.hardware = value;
    else if (kind === 'location') locations.push(value);
    else if (kind === 'profile') out.profiles.push(value);
  }
  if (locations.length) out.location = locations.join(', ');
  return out;
}

/** The ProbeMatch entries of one datagram (none when it is something else). */
export function parseProbeMatches(xml: string, from: string): DiscoveredCamera[] {
  const found: DiscoveredCamera[] = [];
  for (const m of xml.matchAll(/<(?:[\w.-]+:)?ProbeMatch\b[^>]*>([\s\S]*?)<\/(?:[\w.-]+:)?ProbeMatch>/g)) {
    const body = m[1];
    const xaddrs = words(xmlText(body, 'XAddrs'));
    const urls = xaddrs.flatMap((x) => {
      try {
        return [new URL(x)];
      } catch {
        return [];
      }
    });
    const pick = urls.find((u) => u.hostname.replace(/^\[|\]$/g, '') === from) ?? urls.find((u) => /^https?:$/.test(u.protocol)) ?? urls[0];
    if (!pick) continue;
    found.push({
      address: pick.href,
      host: pick.hostname.replace(/^\[|\]$/g, ''),
      port: pick.port ? Number(pick.port) : pick.protocol === 'https:' ? 443 : 80,
      xaddrs,
      urn: xmlText(body, 'Address') ?? pick.href,
      types: words(xmlText(body, 'Types')).map((t) => t.replace(/^[\w.-]+:/, '')),
      scopes: parseScopes(words(xmlText(body, 'Scopes'))),
      from,
    });
  }
  return found;
}

/** Non-internal IPv4 addresses: one multicast probe leaves through each interface. */
function ipv4Interfaces(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((addrs) => addrs ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

function bind(socket: Socket, address?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: 0, ...(address ? { address } : {}) }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function send(socket: Socket, msg: Buffer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(msg, port, host, (err) => (err ? reject(err) : resolve())));
}

/** Probes and collects answers for `timeoutMs`; throws only when no probe could be sent at all. */
export async function probeOnvif(opts: ProbeOptions): Promise<DiscoveredCamera[]> {
  const targets = opts.targets ?? [];
  const multicast = opts.multicast ?? targets.length === 0;
  const ids = new Set<string>();
  const found = new Map<string, DiscoveredCamera>();
  const sockets: Socket[] = [];
  const errors: string[] = [];
  let sent = 0;

  const open = async (type: 'udp4' | 'udp6', address?: string): Promise<Socket> => {
    const s = createSocket(type);
    sockets.push(s);
    s.on('error', (err) => errors.push(err.message));
    s.on('message', (msg, rinfo) => {
      const xml = msg.toString('utf8');
      const relates = xmlText(xml, 'RelatesTo');
      // Answers to someone else's probe (another tool on this host) are not ours.
      if (relates !== undefined && !ids.has(relates)) return;
      for (const cam of parseProbeMatches(xml, rinfo.address)) if (!found.has(cam.urn)) found.set(cam.urn, cam);
    });
    await bind(s, address);
    return s;
  };
  const probe = async (s: Socket, port: number, host: string) => {
    for (const type of PROBE_TYPES) {
      const id = `urn:uuid:${randomUUID()}`;
      ids.add(id);
      try {
        await send(s, probeMessage(id, type), port, host);
        sent++;
      } catch (err) {
        errors.push(`${host}:${port}: ${(err as Error).message}`);
      }
    }
  };

  try {
    if (multicast) {
      const ifaces = ipv4Interfaces();
      for (const addr of ifaces.length ? ifaces : [undefined]) {
        try {
          const s = await open('udp4', addr);
          if (addr) s.setMulticastInterface(addr);
          await probe(s, WS_DISCOVERY_PORT, WS_DISCOVERY_GROUP);
        } catch (err) {
          errors.push(`${addr ?? 'default'}: ${(err as Error).message}`);
        }
      }
    }
    if (targets.length) {
      const v4 = targets.some((t) => !isIPv6(t.host)) ? await open('udp4') : null;
      const v6 = targets.some((t) => isIPv6(t.host)) ? await open('udp6') : null;
      for (const t of targets) await probe(isIPv6(t.host) ? v6! : v4!, t.port ?? WS_DISCOVERY_PORT, t.host);
    }
    if (sent === 0) throw new Error(`WS-Discovery probe could not be sent: ${errors.join('; ') || 'no network interface'}`);
    await new Promise((resolve) => setTimeout(resolve, opts.timeoutMs));
  } finally {
    for (const s of sockets) {
      try {
        s.close();
      } catch {
        // already closed by a failed bind
      }
    }
  }
  return [...found.values()].sort((a, b) => a.host.localeCompare(b.host, 'en', { numeric: true }) || a.port - b.port);
}
