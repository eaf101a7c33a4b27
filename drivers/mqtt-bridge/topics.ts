// Topic filters and device templates: validated at config time (index.ts checks) and
// applied per message (driver.ts).

/** Why a topic filter is invalid (MQTT 3.1.1 §4.7), or null. */
export function filterProblem(filter: string): string | null {
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l.includes('#') && (l !== '#' || i !== levels.length - 1)) return "'#' must be a whole level, and the last one";
    if (l.includes('+') && l !== '+') return "'+' must be a whole level";
  }
  return null;
}

/** The topic levels a template refers to ({N}). */
export function templateLevels(template: string): number[] {
  return [...template.matchAll(/\{(\d+)\}/g)].map((m) => Number(m[1]));
}

/** Why a template cannot work with this filter (a level it can never have), or null. */
export function templateProblem(filter: string, template: string): string | null {
  const levels = filter.split('/');
  if (levels.at(-1) === '#') return null; // any depth
  const bad = templateLevels(template).find((n) => n >= levels.length);
  return bad === undefined ? null : `{${bad}}: the topic ${filter} has only levels 0-${levels.length - 1}`;
}

/** Whether `topic` matches `filter` ($-topics only match filters that name them). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (t[0].startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** The device name a topic gives through the template, or null when a level is missing or empty. */
export function deviceName(template: string, topic: string): string | null {
  const t = topic.split('/');
  let missing = false;
  const name = template.replace(/\{(\d+)\}/g, (_m, n: string) => {
    const v = t[Number(n)];
    if (v === undefined || v === '') missing = true;
    return v ?? '';
  });
  return missing ? null : name;
}
