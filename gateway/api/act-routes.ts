// The local API's acting routes: device commands (audited as command.sent/failed) and
// admin SQL (sandboxed, limited and audited as audit.query, gateway/store/sandbox.ts).
import { randomUUID } from 'node:crypto';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import type { SiteConfig } from '../../config/schema.js';
import type {} from '../contract/api.js';
import { commandAudit, commandFrom, type Command, type CommandResult } from '../contract/types.js';
import { withConnection } from '../kernel/duckdb.js';
import { QueryError } from '../kernel/query-params.js';
import { readOnlySql } from '../store/sandbox.js';
import { MAX_LIMIT } from './routes.js';

export interface ActDeps {
  db: DuckDBInstance;
  queryLimits: SiteConfig['http']['query'];
  sendCommand(cmd: Command): Promise<CommandResult>;
  emitEvent(type: string, component: string, data?: unknown, subject?: string): Promise<void>;
  countQuery(outcome: string): void;
}

export function registerActRoutes(app: FastifyInstance, deps: ActDeps): void {
  let runningQueries = 0;
  // Commands are audited as events whatever the outcome.
  app.post<{ Params: { id: string }; Body: { action: string; args?: Record<string, unknown> } }>(
    '/api/v1/devices/:id/commands',
    {
      config: { minRole: 'operator', idempotent: true },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action'],
          properties: { action: { type: 'string', minLength: 1 }, args: { type: 'object' } },
        },
      },
    },
    async (req, reply) => {
      const cmd = commandFrom(
        { id: randomUUID(), device: req.params.id, requestedBy: `api:${req.identity?.name ?? 'unknown'}` },
        req.body.action,
        req.body.args,
      );
      if (typeof cmd === 'string') return reply.code(400).send({ error: cmd });
      const result = await deps.sendCommand(cmd);
      await deps.emitEvent(
        result.ok ? 'command.sent' : 'command.failed',
        'api',
        { ...commandAudit(cmd), detail: result.detail },
        cmd.device,
      );
      return reply.code(result.ok ? 202 : 409).send({ id: cmd.id, ...result });
    },
  );

  app.post<{ Body: { sql: string; maxRows?: number } }>(
    '/api/v1/query',
    {
      config: { minRole: 'admin' },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['sql'],
          properties: { sql: { type: 'string', minLength: 1 }, maxRows: { type: 'integer', minimum: 1, maximum: MAX_LIMIT } },
        },
      },
    },
    async (req, reply) => {
      const limits = deps.queryLimits;
      const who = req.identity!;
      const started = performance.now();
      const audit = (outcome: string, extra: Record<string, unknown>) => {
        deps.countQuery(outcome);
        return deps.emitEvent('audit.query', 'api', {
          by: who.name,
          role: who.role,
          via: 'api',
          remote: req.ip,
          sql: req.body.sql,
          outcome,
          durationMs: Math.round(performance.now() - started),
          ...extra,
        });
      };
      if (runningQueries >= limits.maxConcurrent) {
        await audit('busy', { rows: 0 });
        return reply
          .code(429)
          .header('retry-after', 1)
          .send({ error: `${runningQueries} queries are running (http.query.maxConcurrent); try again shortly` });
      }
      runningQueries++;
      try {
        const maxRows = Math.min(req.body.maxRows ?? limits.maxRows, MAX_LIMIT);
        const result = await withConnection(deps.db, (c) => readOnlySql(c, req.body.sql, maxRows, { timeoutMs: limits.timeoutMs }));
        await audit('ok', { rows: result.rows.length, truncated: result.truncated });
        return result;
      } catch (err) {
        const msg = (err as Error).message;
        const outcome = msg.startsWith('refused') ? 'refused' : msg.startsWith('interrupted') ? 'timeout' : 'error';
        await audit(outcome, { rows: 0, error: msg.slice(0, 500) });
        if (err instanceof QueryError) throw Object.assign(err, { statusCode: 400 });
        throw err;
      } finally {
        runningQueries--;
      }
    },
  );
}
