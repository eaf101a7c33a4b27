// Shared by every YAML config the project reads (the site file, the cloud's file): parse
// with positions, validate with ajv, and report each problem as `file:line:col path:
// message` — unknown keys with a "did you mean", missing keys at their parent — so an
// installer can jump straight to it.
import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, isMap, isNode, type Document, type Node } from 'yaml';

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path ? p.path + ': ' : ''}${p.message}`;
}

/** A check JSON Schema cannot express, at a path in the document. */
export interface CrossCheckProblem {
  path: (string | number)[];
  message: string;
}

/** Reads a config file; a missing or unreadable file is a ConfigError naming it. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError([{ file: path, line: 0, col: 0, path: '', message: reason }]);
  }
}

/** Parses YAML text, validates it (filling defaults) and runs the cross checks; `file` only labels errors. */
export function parseYamlConfig<T>(
  text: string,
  file: string,
  validate: ValidateFunction<T>,
  crossChecks: (data: T) => CrossCheckProblem[] = () => [],
): T {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: '', message: firstLine(e.message) };
      }),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  const problems = validate(data)
    ? crossChecks(data).map((c) => locate(doc, lines, file, c.path, c.message))
    : dedupe(validate.errors ?? []).map((e) => toProblem(e, doc, lines, file));
  if (problems.length === 0) return data as T;
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(problems);
}

function locate(doc: Document, lines: LineCounter, file: string, path: (string | number)[], message: string): ConfigProblem {
  const pos = lines.linePos(nodeAt(doc, path)?.range?.[0] ?? 0);
  return { file, line: pos.line, col: pos.col, path: formatPath(path), message };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

// anyOf failures repeat the same place many times; keep the most specific message.
function dedupe(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === 'anyOf') return false;
    const key = e.instancePath + '|' + e.keyword + '|' + JSON.stringify(e.params);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

function toProblem(e: ErrorObject, doc: Document, lines: LineCounter, file: string): ConfigProblem {
  const path = pointerToPath(e.instancePath);
  let node = nodeAt(doc, path);
  let shownPath = path;
  let message = e.message ?? 'is invalid';
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      shownPath = [...path, key];
      node = keyNodeOf(node, key) ?? node;
      const hint = closest(key, knownKeys(e.parentSchema));
      message = `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`;
      break;
    }
    case 'required':
      message = `missing required key "${String(params.missingProperty)}"`;
      break;
    case 'type':
      message = `must be ${article(String(params.type))} ${String(params.type)}`;
      break;
    case 'discriminator': {
      const options = ((e.parentSchema as { oneOf?: { properties: Record<string, { const?: string }> }[] }).oneOf ?? [])
        .map((o) => o.properties[String(params.tag)]?.const)
        .filter(Boolean);
      message = `"${String(params.tag)}" must be one of: ${options.join(', ')}`;
      break;
    }
    case 'maxProperties':
    case 'minProperties': {
      const what = (e.parentSchema as { description?: string } | undefined)?.description;
      message = what ? `must have ${what}` : message;
      break;
    }
    case 'enum':
      message = `must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'pattern': {
      const what = (e.parentSchema as { description?: string } | undefined)?.description;
      message = what ? `is not valid here: expected ${what}` : `does not match the expected form ${String(params.pattern)}`;
      break;
    }
  }
  const pos = lines.linePos(node?.range?.[0] ?? 0);
  return { file, line: pos.line, col: pos.col, path: formatPath(shownPath), message };
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

function nodeAt(doc: Document, path: (string | number)[]): Node | undefined {
  // Walk down while nodes exist, so a missing leaf still points at its nearest parent.
  for (let n = path.length; n >= 0; n--) {
    const found: unknown = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(found)) return found;
  }
  return undefined;
}

function keyNodeOf(node: Node | undefined, key: string): Node | undefined {
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isNode(pair.key) && String((pair.key as { value?: unknown }).value) === key) return pair.key;
  }
  return undefined;
}

function knownKeys(schema: unknown): string[] {
  const props = (schema as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ? Object.keys(props) : [];
}

/** The known key nearest to a typo, if it is plausibly the same word. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) [best, bestDist] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
