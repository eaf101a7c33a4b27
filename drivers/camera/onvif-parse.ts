// Reading what the `onvif` package parses: XML scalars, lists that may be one element,
// and an event notification message → OnvifEvent.

export interface OnvifEvent {
  /** Topic without namespace prefixes, e.g. RuleEngine/CellMotionDetector/Motion. */
  topic: string;
  kind: 'motion' | 'tamper' | 'other';
  /** Motion and tamper: active or not; other topics: the data value as the camera sent it. */
  state: boolean | string;
  /** Camera time of the event, ms since the epoch. */
  time: number;
  /** Source items, e.g. { VideoSourceConfigurationToken: 'vsc1', Rule: 'MyMotionRule' }. */
  source: Record<string, string>;
  /** Initialized (state at subscription time), Changed or Deleted. */
  operation?: string;
}

export const escXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const unescXml = (s: string) =>
  s.replace(
    /&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-f]+);/gi,
    (_, e: string) =>
      ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e.toLowerCase()] ??
      String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
  );

/** Text of the first element named `name` (any namespace prefix) in raw XML. */
export function xmlText(xml: string, name: string): string | undefined {
  const m = new RegExp(`<(?:[\\w.-]+:)?${name}\\b[^>]*>([^<]*)</(?:[\\w.-]+:)?${name}>`).exec(xml);
  return m ? unescXml(m[1].trim()) : undefined;
}

export type Obj = Record<string, unknown>;
export const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});
export const list = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);
// An XML scalar as text; anything else (a nested element) is no text.
export const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
export const num = (v: unknown): number | null =>
  typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && v.trim() && Number.isFinite(Number(v)) ? Number(v) : null;

export const toMs = (v: unknown): number => (v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : NaN);

/** Items of a tt:Source or tt:Data element as a name → value map. */
function simpleItems(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const it of list(obj(v).simpleItem)) {
    const a = obj(obj(it).$);
    if (a.Name !== undefined) out[str(a.Name)] = a.Value;
  }
  return out;
}

const STATE_ITEMS = ['IsMotion', 'State', 'IsTamper', 'IsInside', 'LogicalState', 'Value'];

/** One NotificationMessage (as the library parses it) → OnvifEvent. */
export function normaliseEvent(m: unknown): OnvifEvent {
  const topicEl = obj(m).topic;
  const rawTopic = typeof topicEl === 'string' ? topicEl : str(obj(topicEl)._);
  const topic = rawTopic
    .trim()
    .split('/')
    .map((s) => s.replace(/^[\w.-]+:/, ''))
    .join('/');
  const msg = obj(obj(obj(m).message).message);
  const attrs = obj(msg.$);
  const data = simpleItems(msg.data);
  const names = Object.keys(data);
  const key = names.length === 1 ? names[0] : (STATE_ITEMS.find((n) => n in data) ?? names[0]);
  const raw = key === undefined ? '' : data[key];
  const kind: OnvifEvent['kind'] = /tamper|GlobalSceneChange/i.test(topic) ? 'tamper' : /motion/i.test(topic) ? 'motion' : 'other';
  const flag = raw === true || raw === 1 || /^(true|1|active|on)$/i.test(String(raw));
  const state = kind !== 'other' || typeof raw === 'boolean' ? flag : String(raw);
  const time = toMs(attrs.UtcTime);
  const source = Object.fromEntries(Object.entries(simpleItems(msg.source)).map(([k, v]) => [k, String(v)]));
  return {
    topic,
    kind,
    state,
    time: Number.isFinite(time) ? time : Date.now(),
    source,
    ...(attrs.PropertyOperation !== undefined ? { operation: str(attrs.PropertyOperation) } : {}),
  };
}
