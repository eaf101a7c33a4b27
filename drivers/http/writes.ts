// A write command as an HTTP request: the device's `write` template with {{point}} and
// {{value}} filled in (the value JSON-encoded in the body, URL-encoded in the URL), so
// rules, the commands API and the lock API can drive an HTTP relay.
import { request, type Dispatcher } from 'undici';
import type { CommandResult, WriteCommand } from '../../gateway/contract/types.js';
import { clientAuthHeaders } from './client-auth.js';
import type { HttpWriteConfig } from './schema.js';

const fill = (template: string, cmd: WriteCommand, encode: (v: string) => string) =>
  template
    .replaceAll('{{point}}', encode(cmd.point))
    .replaceAll('{{value}}', encode(typeof cmd.value === 'string' ? cmd.value : JSON.stringify(cmd.value)));

export async function httpWrite(w: HttpWriteConfig, cmd: WriteCommand, agent: Dispatcher): Promise<CommandResult> {
  const url = fill(w.url, cmd, encodeURIComponent);
  const body =
    w.body === undefined
      ? undefined
      : fill(w.body, cmd, (v) => (typeof cmd.value === 'string' && v === cmd.value ? JSON.stringify(v).slice(1, -1) : v));
  try {
    const res = await request(url, {
      method: w.method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...w.headers, ...clientAuthHeaders(w.auth) },
      ...(body !== undefined ? { body } : {}),
      dispatcher: agent,
      headersTimeout: w.timeoutMs,
      bodyTimeout: w.timeoutMs,
      signal: AbortSignal.timeout(w.timeoutMs),
    });
    const text = (await res.body.text()).slice(0, 200);
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, detail: `HTTP ${res.statusCode}` };
    return { ok: false, detail: `HTTP ${res.statusCode}: ${text}` };
  } catch (err) {
    return { ok: false, detail: `request failed: ${(err as Error).message}` };
  }
}
