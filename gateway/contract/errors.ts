// Why the store did not take input: typed, so the context (and a driver that cares) can
// tell a full queue from a failing store without comparing error names.

export class QueueFullError extends Error {
  constructor(queued: number, max: number) {
    super(`store queue full: ${queued} rows waiting, limit ${max} (store.maxQueueRows)`);
    this.name = 'QueueFullError';
  }
}

export class StoreClosedError extends Error {
  constructor() {
    super('store is closed: the gateway is shutting down');
    this.name = 'StoreClosedError';
  }
}

/** A failed commit: the rows were not stored and not acknowledged. */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** The reject reason a store failure is counted under (outpost_rejects_total{reason}). */
export function storeRejectReason(err: unknown): 'queue_full' | 'store_error' {
  return err instanceof QueueFullError ? 'queue_full' : 'store_error';
}
