// Office → gateway messages on DuckDB: the command queue and desired config versions.
// Writes for one gateway run under its lock (DuckDB refuses concurrent updates of a row).
import { randomUUID } from 'node:crypto';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { CloudCommand, CommandAck, DesiredConfig } from '../protocol.js';
import { inTransaction, rows, tsParam, withConnection } from './duckdb-schema.js';
import type { KeyedQueue } from './keyed-queue.js';
import type { CommandRecord, CommandStatus, ConfigAck, NewCommand } from './store.js';

export const gatewayLockKey = (gatewayId: string) => `gw:${gatewayId}`;

const COMMAND_COLS = `id, kind, args::VARCHAR, requested_by, epoch_ms(created_at)::DOUBLE`;

function toCommand(r: unknown[]): CloudCommand {
  return {
    id: r[0] as string,
    kind: r[1] as CloudCommand['kind'],
    args: JSON.parse(r[2] as string) as Record<string, unknown>,
    requestedBy: r[3] as string,
    createdAt: r[4] as number,
  };
}

export class DuckDbCommands {
  constructor(
    private readonly instance: DuckDBInstance,
    private readonly locks: KeyedQueue,
  ) {}

  async add(cmd: NewCommand): Promise<CloudCommand> {
    const now = Date.now();
    const out: CloudCommand = { id: randomUUID(), kind: cmd.kind, args: cmd.args, requestedBy: cmd.requestedBy, createdAt: now };
    await withConnection(this.instance, (c) =>
      c.run(
        `INSERT INTO commands (id, gateway_id, kind, args, requested_by, created_at, expires_at) VALUES ($1, $2, $3, $4::JSON, $5, $6, $7)`,
        [out.id, cmd.gatewayId, cmd.kind, JSON.stringify(cmd.args), cmd.requestedBy, tsParam(now), tsParam(now + cmd.ttlSeconds * 1000)],
      ),
    );
    return out;
  }

  // An expired command is never handed out, even if it was fetched before: a stale
  // unlock executed hours later is worse than none.
  async pending(gatewayId: string, limit: number): Promise<CloudCommand[]> {
    const pick = `gateway_id = $1 AND acked_at IS NULL AND expires_at > now()`;
    return this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, (c) =>
        inTransaction(c, async () => {
          const list = await rows(
            c,
            `SELECT ${COMMAND_COLS} FROM commands WHERE ${pick} ORDER BY created_at, id LIMIT ${Math.trunc(limit)}`,
            [gatewayId],
          );
          if (list.length > 0) {
            await c.run(
              `UPDATE commands SET delivered_at = now() WHERE delivered_at IS NULL AND id IN
                 (SELECT id FROM commands WHERE ${pick} ORDER BY created_at, id LIMIT ${Math.trunc(limit)})`,
              [gatewayId],
            );
          }
          return list.map(toCommand);
        }),
      ),
    );
  }

  async ack(gatewayId: string, id: string, ack: CommandAck): Promise<boolean> {
    return this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, async (c) => {
        const found = await rows(c, 'SELECT acked_at IS NOT NULL FROM commands WHERE id = $1 AND gateway_id = $2', [id, gatewayId]);
        if (found.length === 0) return false;
        if (found[0][0] === true) return true; // the first result is kept
        await c.run('UPDATE commands SET acked_at = now(), ok = $1, detail = $2 WHERE id = $3', [ack.ok, ack.detail ?? null, id]);
        return true;
      }),
    );
  }

  async list(gatewayId: string, limit: number): Promise<CommandRecord[]> {
    const out = await withConnection(this.instance, (c) =>
      rows(
        c,
        `SELECT ${COMMAND_COLS}, epoch_ms(expires_at)::DOUBLE, epoch_ms(delivered_at)::DOUBLE, epoch_ms(acked_at)::DOUBLE, ok, detail,
                expires_at <= now()
         FROM commands WHERE gateway_id = $1 ORDER BY created_at DESC, id LIMIT ${Math.trunc(limit)}`,
        [gatewayId],
      ),
    );
    return out.map((r) => {
      const ackedAt = r[7] as number | null;
      const status: CommandStatus =
        ackedAt !== null ? (r[8] ? 'done' : 'failed') : r[10] ? 'expired' : r[6] !== null ? 'delivered' : 'pending';
      return {
        ...toCommand(r),
        gatewayId,
        status,
        expiresAt: r[5] as number,
        deliveredAt: r[6] as number | null,
        ackedAt,
        detail: r[9] as string | null,
      };
    });
  }

  async putConfig(gatewayId: string, yaml: string, by: string): Promise<number> {
    return this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, async (c) => {
        const next =
          ((
            await rows(c, 'SELECT coalesce(max(version), 0)::DOUBLE FROM desired_config WHERE gateway_id = $1', [gatewayId])
          )[0][0] as number) + 1;
        await c.run('INSERT INTO desired_config (gateway_id, version, yaml, created_at, created_by) VALUES ($1, $2, $3, now(), $4)', [
          gatewayId,
          next,
          yaml,
          by,
        ]);
        return next;
      }),
    );
  }

  async config(gatewayId: string): Promise<DesiredConfig | undefined> {
    const r = await withConnection(this.instance, (c) =>
      rows(c, 'SELECT version::DOUBLE, yaml FROM desired_config WHERE gateway_id = $1 ORDER BY version DESC LIMIT 1', [gatewayId]),
    );
    return r[0] ? { version: r[0][0] as number, yaml: r[0][1] as string } : undefined;
  }

  async ackConfig(gatewayId: string, ack: ConfigAck): Promise<boolean> {
    return this.locks.run(gatewayLockKey(gatewayId), () =>
      withConnection(this.instance, async (c) => {
        const r = await rows(
          c,
          'UPDATE desired_config SET acked_at = now(), ack_ok = $1, ack_detail = $2 WHERE gateway_id = $3 AND version = $4 RETURNING version',
          [ack.ok, ack.detail ?? null, gatewayId, ack.version],
        );
        return r.length > 0;
      }),
    );
  }
}
