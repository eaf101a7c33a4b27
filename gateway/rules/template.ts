// Renders a rule's actions for one firing: a deep copy in which every string value has its
// {{placeholders}} filled from the firing context. Object keys are never rendered, and the
// rule config itself is never mutated (actions are handed to other threads and stored).
import type { Action } from '../../config/rules-schema.js';

export interface TemplateContext {
  rule: string;
  device?: string;
  point?: string;
  value?: number | boolean | string;
  previous?: number | boolean | string;
  zone?: string;
  type?: string;
  subject?: string;
}

const PLACEHOLDER = /\{\{\s*(rule|device|point|value|previous|zone|type|subject)\s*\}\}/g;

/** Known placeholders are replaced (missing → ''); unknown `{{x}}` text is left as it is. */
function renderString(s: string, ctx: TemplateContext): string {
  if (!s.includes('{{')) return s;
  return s.replace(PLACEHOLDER, (_, name: keyof TemplateContext) => {
    const v = ctx[name];
    return v === undefined ? '' : String(v);
  });
}

function renderJson(v: unknown, ctx: TemplateContext): unknown {
  if (typeof v === 'string') return renderString(v, ctx);
  if (Array.isArray(v)) return v.map((x) => renderJson(x, ctx));
  if (v !== null && typeof v === 'object') {
    // fromEntries defines own properties, so a "__proto__" key stays a plain key.
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renderJson(x, ctx)]));
  }
  return v;
}

const DEFAULT_READING_KEY = '{{rule}}:{{device}}/{{point}}';
const DEFAULT_EVENT_KEY = '{{rule}}:{{subject}}';

/** Renders every action; an alert without `key` gets the rendered default de-duplication key. */
export function renderActions(actions: readonly Action[], ctx: TemplateContext, eventRule: boolean): Action[] {
  return actions.map((a) => {
    const out = renderJson(a, ctx) as Action;
    if (out.alert && out.alert.key === undefined) {
      out.alert.key = renderString(eventRule ? DEFAULT_EVENT_KEY : DEFAULT_READING_KEY, ctx);
    }
    return out;
  });
}
