// One delivery attempt: a POST with undici, classified as delivered (2xx), gone (410: the
// receiver asks us to stop), or failed (any other status, a timeout, a connection error).
import { request } from 'undici';

export type AttemptResult = { kind: 'delivered' } | { kind: 'gone' } | { kind: 'failed'; error: string } | { kind: 'aborted' };

export async function sendAttempt(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  stop: AbortSignal,
): Promise<AttemptResult> {
  const signal = AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]);
  try {
    const res = await request(url, { method: 'POST', headers, body, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump(); // only the status matters; free the connection
    if (res.statusCode >= 200 && res.statusCode < 300) return { kind: 'delivered' };
    if (res.statusCode === 410) return { kind: 'gone' };
    return { kind: 'failed', error: `HTTP ${res.statusCode}` };
  } catch (err) {
    if (stop.aborted) return { kind: 'aborted' };
    const e = err as Error & { code?: string; cause?: Error };
    const why = signal.aborted ? `timed out after ${timeoutMs} ms` : (e.cause?.message ?? e.code ?? e.message);
    return { kind: 'failed', error: why };
  }
}
