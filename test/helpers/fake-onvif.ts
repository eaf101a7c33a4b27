// A small ONVIF device for tests (no simulator exists in Debian or npm): a SOAP responder
// on 127.0.0.1 answering just what the real `onvif` client and our wrapper send (device,
// media, PTZ, pull-point events), with WS-Security UsernameToken digest checks, and a
// WS-Discovery responder on UDP answering Probe with a ProbeMatch. It records every call.
import { createHash, randomUUID } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket as TcpSocket } from 'node:net';

export interface FakeOnvifOptions {
  /** When set, every call outside the pre-auth set needs a valid UsernameToken digest. */
  username?: string;
  password?: string;
  /** HTTP status sent with ter:NotAuthorized (spec: 400; some cameras send 401). */
  authFailStatus?: 400 | 401;
  /** GetStreamUri answer; a function gets the profile token. */
  streamUri?: string | ((profile: string) => string);
  snapshotUri?: string;
  /** 1: main stream only; 2: main + sub stream (default 2). */
  profiles?: 1 | 2;
  ptz?: boolean;
  events?: boolean;
  /** Answer GetServices (default: fault, so the client falls back to GetCapabilities). */
  services?: boolean;
  scopes?: string[];
  urn?: string;
  /** How long PullMessages waits for an event before answering with none (default 300 ms). */
  pullHoldMs?: number;
}

export interface FakeCall {
  action: string;
  path: string;
  /** UsernameToken user, when a valid one was sent. */
  user?: string;
  /** Simple request elements: ProfileToken, PresetToken, Protocol, Stream, MessageLimit... */
  params: Record<string, string>;
}

export interface FakeOnvif {
  port: number;
  discoveryPort: number;
  xaddr: string;
  urn: string;
  calls: FakeCall[];
  probes: number;
  /** Live pull-point subscriptions. */
  subscriptions(): number;
  /** Forgets every subscription, as a camera does on reboot or expiry (held pulls get a fault). */
  dropSubscriptions(): void;
  emitMotion(state?: boolean): void;
  emitTamper(state?: boolean): void;
  close(): Promise<void>;
}

const NS = [
  's="http://www.w3.org/2003/05/soap-envelope"',
  'tds="http://www.onvif.org/ver10/device/wsdl"',
  'trt="http://www.onvif.org/ver10/media/wsdl"',
  'tt="http://www.onvif.org/ver10/schema"',
  'tptz="http://www.onvif.org/ver20/ptz/wsdl"',
  'tev="http://www.onvif.org/ver10/events/wsdl"',
  'wsnt="http://docs.oasis-open.org/wsn/b-2"',
  'wsa5="http://www.w3.org/2005/08/addressing"',
  'tns1="http://www.onvif.org/ver10/topics"',
  'ter="http://www.onvif.org/ver10/error"',
]
  .map((n) => `xmlns:${n}`)
  .join(' ');

const envelope = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope ${NS}><s:Body>${body}</s:Body></s:Envelope>`;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fault = (code: 'Sender' | 'Receiver', sub: string, reason: string) =>
  envelope(
    `<s:Fault><s:Code><s:Value>s:${code}</s:Value><s:Subcode><s:Value>${sub}</s:Value></s:Subcode></s:Code>` +
      `<s:Reason><s:Text xml:lang="en">${reason}</s:Text></s:Reason></s:Fault>`,
  );

/** Text of the first element with this local name (any prefix). */
function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<(?:[\\w-]+:)?${name}\\b[^>]*>([^<]*)</(?:[\\w-]+:)?${name}>`).exec(xml);
  return m?.[1]?.trim();
}

/** Local name of the first element inside the SOAP Body. */
function bodyAction(xml: string): string | undefined {
  const body = /<(?:[\w-]+:)?Body\b[^>]*>([\s\S]*)<\/(?:[\w-]+:)?Body>/.exec(xml)?.[1] ?? '';
  return /<(?:[\w-]+:)?([A-Za-z]\w*)[\s/>]/.exec(body)?.[1];
}

// Calls a device answers without credentials (ONVIF core spec, "pre-auth" access class).
const PRE_AUTH = new Set(['GetSystemDateAndTime', 'GetServices', 'GetCapabilities', 'GetHostname', 'GetServiceCapabilities']);

interface Pending {
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

interface Subscription {
  expires: number;
  queue: string[];
  pending?: Pending;
}

const PROFILES = [
  { token: 'profile_1', name: 'mainStream', width: 1280, height: 720, fps: 25 },
  { token: 'profile_2', name: 'subStream', width: 640, height: 360, fps: 15 },
];
const PRESETS = [
  { token: '1', name: 'Gate' },
  { token: '2', name: 'Yard' },
];

export async function startFakeOnvif(opts: FakeOnvifOptions = {}): Promise<FakeOnvif> {
  const calls: FakeCall[] = [];
  const subs = new Map<string, Subscription>();
  let nextSub = 1;
  let probes = 0;
  const urn = opts.urn ?? 'urn:uuid:6b1f1a52-0000-4000-8000-00000000c0de';
  const holdMs = opts.pullHoldMs ?? 300;
  const profiles = PROFILES.slice(0, opts.profiles ?? 2);
  const scopes = opts.scopes ?? [
    'onvif://www.onvif.org/type/video_encoder',
    'onvif://www.onvif.org/Profile/Streaming',
    'onvif://www.onvif.org/name/Fake%20Cam',
    'onvif://www.onvif.org/hardware/FC-100',
    'onvif://www.onvif.org/location/country/test',
    'onvif://www.onvif.org/location/site/lab',
  ];
  const server: Server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const xaddr = `${base}/onvif/device_service`;
  const streamUri = (p: string) =>
    typeof opts.streamUri === 'function' ? opts.streamUri(p) : (opts.streamUri ?? `rtsp://127.0.0.1:8554/${p}?transport=tcp&unicast=true`);
  const now = () => new Date().toISOString();

  function authorize(xml: string, action: string): { ok: boolean; user?: string } {
    if (!opts.username) return { ok: true };
    const user = tag(xml, 'Username');
    if (user === undefined) return { ok: PRE_AUTH.has(action) };
    const digest = tag(xml, 'Password') ?? '';
    const nonce = Buffer.from(tag(xml, 'Nonce') ?? '', 'base64');
    const created = tag(xml, 'Created') ?? '';
    const expect = createHash('sha1')
      .update(Buffer.concat([nonce, Buffer.from(created), Buffer.from(opts.password ?? '')]))
      .digest('base64');
    return user === opts.username && digest === expect ? { ok: true, user } : { ok: false };
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const xml = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      const send = (status: number, body: string) => {
        res.writeHead(status, { 'Content-Type': 'application/soap+xml; charset=utf-8' });
        res.end(body);
      };
      const known = /^\/onvif\/(device|media|ptz|events)_service$/.test(path) || path.startsWith('/onvif/subscription/');
      if (req.method !== 'POST' || !known) {
        res.writeHead(404, { 'Content-Type': 'text/html' }).end('<html><body>not found</body></html>');
        return;
      }
      const action = bodyAction(xml) ?? '?';
      const params: Record<string, string> = {};
      for (const p of ['ProfileToken', 'PresetToken', 'Protocol', 'Stream', 'MessageLimit', 'Timeout', 'Category']) {
        const v = tag(xml.replace(/<(?:[\w-]+:)?Header\b[\s\S]*<\/(?:[\w-]+:)?Header>/, ''), p);
        if (v !== undefined) params[p] = v;
      }
      const auth = authorize(xml, action);
      calls.push({ action, path, ...(auth.user ? { user: auth.user } : {}), params });
      if (!auth.ok) {
        send(opts.authFailStatus ?? 400, fault('Sender', 'ter:NotAuthorized', 'Sender not Authorized'));
        return;
      }
      const answer = respond(action, path, params, res);
      if (answer) send(answer[0], answer[1]);
    });
  }

  const notSupported = (): [number, string] => [500, fault('Receiver', 'ter:ActionNotSupported', 'Optional Action Not Implemented')];
  const ok = (body: string): [number, string] => [200, envelope(body)];
  const profileOf = (params: Record<string, string>) => profiles.find((p) => p.token === params.ProfileToken);
  const noProfile = (): [number, string] => [400, fault('Sender', 'ter:InvalidArgVal', 'No such profile')];

  /** Returns the answer, or undefined when `res` is answered later (a held PullMessages). */
  function respond(action: string, path: string, params: Record<string, string>, res: ServerResponse): [number, string] | undefined {
    switch (action) {
      case 'GetSystemDateAndTime': {
        const d = new Date();
        return ok(
          `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>` +
            `<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute>` +
            `<tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time><tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month>` +
            `<tt:Day>${d.getUTCDate()}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
        );
      }
      case 'GetServices': {
        if (!opts.services) return notSupported();
        const svc = (ns: string, p: string) =>
          `<tds:Service><tds:Namespace>${ns}</tds:Namespace><tds:XAddr>${base}/onvif/${p}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>`;
        return ok(
          `<tds:GetServicesResponse>${svc('http://www.onvif.org/ver10/device/wsdl', 'device_service')}${svc('http://www.onvif.org/ver10/media/wsdl', 'media_service')}` +
            (opts.events !== false ? svc('http://www.onvif.org/ver10/events/wsdl', 'events_service') : '') +
            (opts.ptz ? svc('http://www.onvif.org/ver20/ptz/wsdl', 'ptz_service') : '') +
            '</tds:GetServicesResponse>',
        );
      }
      case 'GetCapabilities':
        return ok(
          `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>${xaddr}</tt:XAddr></tt:Device>` +
            (opts.events !== false
              ? `<tt:Events><tt:XAddr>${base}/onvif/events_service</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>` +
                '<tt:WSPullPointSupport>true</tt:WSPullPointSupport><tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>'
              : '') +
            `<tt:Media><tt:XAddr>${base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>` +
            '<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>' +
            (opts.ptz ? `<tt:PTZ><tt:XAddr>${base}/onvif/ptz_service</tt:XAddr></tt:PTZ>` : '') +
            '</tds:Capabilities></tds:GetCapabilitiesResponse>',
        );
      case 'GetDeviceInformation':
        return ok(
          '<tds:GetDeviceInformationResponse><tds:Manufacturer>Outpost Test</tds:Manufacturer><tds:Model>FakeCam 100</tds:Model>' +
            '<tds:FirmwareVersion>2.10</tds:FirmwareVersion><tds:SerialNumber>0012345678</tds:SerialNumber><tds:HardwareId>FC-100</tds:HardwareId></tds:GetDeviceInformationResponse>',
        );
      case 'GetProfiles':
        return ok(
          '<trt:GetProfilesResponse>' +
            profiles
              .map(
                (p) =>
                  `<trt:Profiles token="${p.token}" fixed="true"><tt:Name>${p.name}</tt:Name>` +
                  '<tt:VideoSourceConfiguration token="vsc1"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>vs1</tt:SourceToken>' +
                  '<tt:Bounds x="0" y="0" width="1280" height="720"/></tt:VideoSourceConfiguration>' +
                  `<tt:VideoEncoderConfiguration token="vec_${p.token}"><tt:Name>${p.name}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>` +
                  `<tt:Resolution><tt:Width>${p.width}</tt:Width><tt:Height>${p.height}</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality>` +
                  `<tt:RateControl><tt:FrameRateLimit>${p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>2048</tt:BitrateLimit></tt:RateControl>` +
                  '<tt:H264><tt:GovLength>50</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264></tt:VideoEncoderConfiguration>' +
                  (opts.ptz
                    ? '<tt:PTZConfiguration token="ptz1"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount><tt:NodeToken>node1</tt:NodeToken></tt:PTZConfiguration>'
                    : '') +
                  '</trt:Profiles>',
              )
              .join('') +
            '</trt:GetProfilesResponse>',
        );
      case 'GetVideoSources':
        return ok(
          '<trt:GetVideoSourcesResponse><trt:VideoSources token="vs1"><tt:Framerate>25</tt:Framerate>' +
            '<tt:Resolution><tt:Width>1280</tt:Width><tt:Height>720</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>',
        );
      case 'GetStreamUri':
      case 'GetSnapshotUri': {
        const p = profileOf(params);
        if (!p) return noProfile();
        const uri = action === 'GetStreamUri' ? streamUri(p.token) : (opts.snapshotUri ?? `${base}/snapshot/${p.token}.jpg`);
        return ok(
          `<trt:${action}Response><trt:MediaUri><tt:Uri>${esc(uri)}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>` +
            `<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:${action}Response>`,
        );
      }
      case 'GetPresets':
        if (!opts.ptz) return notSupported();
        if (!profileOf(params)) return noProfile();
        return ok(
          '<tptz:GetPresetsResponse>' +
            PRESETS.map((p) => `<tptz:Preset token="${p.token}"><tt:Name>${p.name}</tt:Name></tptz:Preset>`).join('') +
            '</tptz:GetPresetsResponse>',
        );
      case 'GotoPreset':
        if (!opts.ptz) return notSupported();
        if (!PRESETS.some((p) => p.token === params.PresetToken)) return [400, fault('Sender', 'ter:InvalidArgVal', 'No such preset')];
        return ok('<tptz:GotoPresetResponse/>');
      case 'CreatePullPointSubscription': {
        if (opts.events === false) return notSupported();
        const id = String(nextSub++);
        subs.set(id, { expires: Date.now() + 120_000, queue: [] });
        return ok(
          `<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>${base}/onvif/subscription/${id}</wsa5:Address>` +
            `</tev:SubscriptionReference><wsnt:CurrentTime>${now()}</wsnt:CurrentTime><wsnt:TerminationTime>${new Date(Date.now() + 120_000).toISOString()}</wsnt:TerminationTime>` +
            '</tev:CreatePullPointSubscriptionResponse>',
        );
      }
      case 'PullMessages':
      case 'Renew':
      case 'Unsubscribe': {
        const id = path.slice('/onvif/subscription/'.length);
        const sub = subs.get(id);
        if (!sub || sub.expires < Date.now()) return [400, fault('Sender', 'ter:InvalidArgVal', 'Unknown subscription')];
        if (action === 'Unsubscribe') {
          subs.delete(id);
          flush(sub);
          return ok('<wsnt:UnsubscribeResponse/>');
        }
        if (action === 'Renew') {
          sub.expires = Date.now() + 120_000;
          return ok(
            `<wsnt:RenewResponse><wsnt:TerminationTime>${new Date(sub.expires).toISOString()}</wsnt:TerminationTime><wsnt:CurrentTime>${now()}</wsnt:CurrentTime></wsnt:RenewResponse>`,
          );
        }
        if (sub.pending) flush(sub);
        sub.pending = { res, timer: setTimeout(() => flush(sub), holdMs) };
        res.on('close', () => {
          // The client gave up (closed its socket): forget the held pull.
          if (sub.pending?.res !== res) return;
          clearTimeout(sub.pending.timer);
          sub.pending = undefined;
        });
        if (sub.queue.length) flush(sub);
        return undefined;
      }
      default:
        return notSupported();
    }
  }

  /** Answers the held PullMessages of `sub` with whatever is queued (maybe nothing). */
  function flush(sub: Subscription): void {
    const p = sub.pending;
    if (!p) return;
    sub.pending = undefined;
    clearTimeout(p.timer);
    const msgs = sub.queue.splice(0);
    p.res.writeHead(200, { 'Content-Type': 'application/soap+xml; charset=utf-8' });
    p.res.end(
      envelope(
        `<tev:PullMessagesResponse><tev:CurrentTime>${now()}</tev:CurrentTime><tev:TerminationTime>${new Date(sub.expires).toISOString()}</tev:TerminationTime>${msgs.join('')}</tev:PullMessagesResponse>`,
      ),
    );
  }

  function emit(topic: string, item: string, state: boolean): void {
    const msg =
      `<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">${topic}</wsnt:Topic>` +
      `<wsnt:Message><tt:Message UtcTime="${now()}" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="vsc1"/>` +
      `<tt:SimpleItem Name="Rule" Value="MyRule"/></tt:Source><tt:Data><tt:SimpleItem Name="${item}" Value="${state}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>`;
    for (const sub of subs.values()) {
      sub.queue.push(msg);
      flush(sub);
    }
  }

  // WS-Discovery: answer Probe (to our own port, unicast) with one ProbeMatch.
  const udp: Socket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const xml = msg.toString('utf8');
    if (bodyAction(xml) !== 'Probe') return;
    probes++;
    const relates = tag(xml, 'MessageID') ?? '';
    const reply =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
      'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">' +
      `<SOAP-ENV:Header><wsa:MessageID>urn:uuid:${randomUUID()}</wsa:MessageID><wsa:RelatesTo>${esc(relates)}</wsa:RelatesTo>` +
      '<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>' +
      `</SOAP-ENV:Header><SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch><wsa:EndpointReference><wsa:Address>${urn}</wsa:Address></wsa:EndpointReference>` +
      `<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>${esc(scopes.join(' '))}</d:Scopes><d:XAddrs>${xaddr}</d:XAddrs>` +
      '<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>';
    udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));

  return {
    port,
    discoveryPort: udp.address().port,
    xaddr,
    urn,
    calls,
    get probes() {
      return probes;
    },
    subscriptions: () => subs.size,
    dropSubscriptions: () => {
      for (const sub of subs.values()) {
        const p = sub.pending;
        sub.pending = undefined;
        if (!p) continue;
        clearTimeout(p.timer);
        p.res
          .writeHead(400, { 'Content-Type': 'application/soap+xml; charset=utf-8' })
          .end(fault('Sender', 'ter:InvalidArgVal', 'Unknown subscription'));
      }
      subs.clear();
    },
    emitMotion: (state = true) => emit('tns1:RuleEngine/CellMotionDetector/Motion', 'IsMotion', state),
    emitTamper: (state = true) => emit('tns1:RuleEngine/TamperDetector/Tamper', 'IsTamper', state),
    async close() {
      for (const sub of subs.values()) flush(sub);
      subs.clear();
      udp.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP server that accepts connections and never answers (a hung camera). */
export async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<TcpSocket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A plain web server (a router's admin page, say): 404 HTML to every request. */
export async function startPlainHttp(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((_req, res) =>
    res.writeHead(404, { 'Content-Type': 'text/html' }).end('<html><body>Not Found</body></html>'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
