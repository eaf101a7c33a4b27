// Standard Webhooks signing (https://www.standardwebhooks.com): the receiver recomputes
// HMAC-SHA256 over `id.timestamp.body` with the shared secret and compares.
import { createHmac } from 'node:crypto';

/** `whsec_<base64>` is decoded (the Standard Webhooks form); any other string is used as its UTF-8 bytes. */
export function secretBytes(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

/** The three Standard Webhooks headers for one attempt (the id is stable across retries). */
export function signatureHeaders(key: Buffer, id: string, body: string, nowMs: number): Record<string, string> {
  const timestamp = String(Math.floor(nowMs / 1000));
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${mac}` };
}

/** Event-type globs: `*` matches any run of characters ('alert.*', '*'). */
export function typeMatcher(globs: readonly string[]): (type: string) => boolean {
  if (globs.length === 0) return () => false;
  const escaped = globs.map((g) => g.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*'));
  const re = new RegExp(`^(?:${escaped.join('|')})$`);
  return (type) => re.test(type);
}
