// `Idempotency-Key` on the local POST routes that act (device commands, lock/unlock,
// alert acknowledge/resolve): a client that retries after a timeout gets the first
// answer again and the action happens once. Keys are scoped to the caller's token and
// kept in the store for 24 h, so a retry after a gateway restart is recognised too. A
// retry while the first request still runs waits for its answer; the same key with a
// different request is refused (422). Answers of 5xx and 429 are not kept: nothing
// happened, so a retry should try again.
import { createHash } from 'node:crypto';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../kernel/log.js';
import { withConnection } from '../kernel/duckdb.js';
import type {} from '../contract/api.js';

const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

interface Stored {
  fingerprint: string;
  status: number;
  body: string;
}

interface Pending {
  fingerprint: string;
  done: Promise<Stored | null>;
  settle(s: Stored | null): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: { scope: string; key: string; fingerprint: string; pending: Pending };
  }
}

export interface IdempotencyCounters {
  replayed(): void;
}

export function registerIdempotency(app: FastifyInstance, instance: DuckDBInstance, log: Logger, counters: IdempotencyCounters): void {
  const pending = new Map<string, Pending>();
  let lastPurge = 0;

  const lookup = (scope: string, key: string) =>
    withConnection(instance, async (c) => {
      const r = await c.runAndReadAll(
        `SELECT fingerprint, status, body FROM idempotency_keys WHERE identity = $1 AND key = $2 AND created_at > now() - INTERVAL '${IDEMPOTENCY_TTL_MS / 1000} seconds'`,
        [scope, key],
      );
      const row = r.getRows()[0];
      return row ? { fingerprint: String(row[0]), status: Number(row[1]), body: String(row[2]) } : null;
    });

  const save = (scope: string, key: string, s: Stored) =>
    withConnection(instance, async (c) => {
      if (Date.now() - lastPurge > 60_000) {
        lastPurge = Date.now();
        await c.run(`DELETE FROM idempotency_keys WHERE created_at < now() - INTERVAL '${IDEMPOTENCY_TTL_MS / 1000} seconds'`);
      }
      await c.run(
        `INSERT INTO idempotency_keys VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (identity, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, body = excluded.body, created_at = excluded.created_at`,
        [scope, key, s.fingerprint, s.status, s.body],
      );
    });

  const replay = (reply: FastifyReply, s: Stored) => {
    counters.replayed();
    return reply.code(s.status).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(s.body);
  };

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!req.routeOptions.config.idempotent) return;
    const raw = req.headers['idempotency-key'];
    if (raw === undefined) return;
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!KEY_PATTERN.test(key)) return reply.code(400).send({ error: 'Idempotency-Key must be 1-255 visible ASCII characters' });
    const scope = req.identity?.name ?? 'anonymous';
    const fingerprint = createHash('sha256')
      .update(`${req.method} ${req.url}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');
    const mismatch = () => reply.code(422).send({ error: `Idempotency-Key "${key}" was already used with a different request` });
    const mapKey = `${scope}\0${key}`;
    const inFlight = pending.get(mapKey);
    if (inFlight) {
      if (inFlight.fingerprint !== fingerprint) return mismatch();
      const first = await inFlight.done;
      if (first) return replay(reply, first);
    }
    // Registered before the store is asked, so a copy arriving meanwhile waits for this one.
    let settle!: (s: Stored | null) => void;
    const done = new Promise<Stored | null>((r) => (settle = r));
    const p: Pending = { fingerprint, done, settle };
    pending.set(mapKey, p);
    let stored: Stored | null;
    try {
      stored = await lookup(scope, key);
    } catch (err) {
      pending.delete(mapKey);
      settle(null);
      throw err;
    }
    if (stored) {
      pending.delete(mapKey);
      settle(stored.fingerprint === fingerprint ? stored : null);
      return stored.fingerprint === fingerprint ? replay(reply, stored) : mismatch();
    }
    req.idempotency = { scope, key, fingerprint, pending: p };
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const idem = req.idempotency;
    if (!idem) return payload;
    req.idempotency = undefined;
    const status = reply.statusCode;
    const body =
      typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : JSON.stringify(payload ?? null);
    const keep = status < 500 && status !== 429;
    const s: Stored = { fingerprint: idem.fingerprint, status, body };
    try {
      if (keep) await save(idem.scope, idem.key, s);
    } catch (err) {
      log.error({ err, key: idem.key }, 'could not store an idempotency key; a retry may act again');
    } finally {
      pending.delete(`${idem.scope}\0${idem.key}`);
      idem.pending.settle(keep ? s : null);
    }
    return payload;
  });

  // A request that fails before its answer is sent must not leave waiters hanging.
  app.addHook('onResponse', async (req: FastifyRequest) => {
    const idem = req.idempotency;
    if (!idem) return;
    pending.delete(`${idem.scope}\0${idem.key}`);
    idem.pending.settle(null);
  });
}
