// Runs async work one at a time per key (FIFO), with an optional bound on how many may
// wait per key. Used for ingest ordering per (gateway, stream) and for DuckDB row locks.

export class QueueFullError extends Error {
  constructor(key: string, max: number) {
    super(`too many batches queued for ${key} (limit ${max}); retry shortly`);
    this.name = 'QueueFullError';
  }
}

interface Lane {
  tail: Promise<void>;
  length: number;
}

export class KeyedQueue {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly maxPerKey = Number.POSITIVE_INFINITY) {}

  /** Work queued or running for `key`. */
  size(key: string): number {
    return this.lanes.get(key)?.length ?? 0;
  }

  /** Runs `fn` after every earlier call for `key` settled; throws QueueFullError when the lane is full. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { tail: Promise.resolve(), length: 0 };
      this.lanes.set(key, lane);
    }
    if (lane.length >= this.maxPerKey) throw new QueueFullError(key, this.maxPerKey);
    lane.length++;
    const before = lane.tail;
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    lane.tail = before.then(() => done);
    await before;
    try {
      return await fn();
    } finally {
      release();
      // An empty lane is dropped so the map only holds keys with work (bounded memory).
      if (--lane.length === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
    }
  }
}
