// The store's rows as sync sees them: three streams, each a seq-ordered slice of one
// table. The store keeps each stream's marks (gateway/store/sync-marks.ts), the uploader
// sends them in this order, the cloud files them under these names.

/**
 * Upload streams, in priority order. Each is a seq-ordered slice of one gateway table:
 *  - priority:  events whose type starts with `alert.` or `access.` (events.seq)
 *  - events:    every other event (events.seq)
 *  - telemetry: readings (readings.seq)
 * The seq numbers of `priority` and `events` interleave (one events table); each stream's
 * acknowledged high-water mark is the largest seq of that stream the cloud has committed.
 */
export const STREAMS = ['priority', 'events', 'telemetry'] as const;
export type Stream = (typeof STREAMS)[number];
export const isStream = (s: unknown): s is Stream => typeof s === 'string' && (STREAMS as readonly string[]).includes(s);

/** Event types that travel in the priority stream (SQL LIKE patterns, ORed). */
export const PRIORITY_EVENT_PATTERNS = ['alert.%', 'access.%'] as const;

/** The table a stream is a slice of. */
export const STREAM_TABLE: Record<Stream, 'readings' | 'events'> = { priority: 'events', events: 'events', telemetry: 'readings' };

/** Whether an event of this type travels in the priority stream. */
export const isPriorityType = (type: string): boolean => PRIORITY_EVENT_PATTERNS.some((p) => type.startsWith(p.slice(0, -1)));

const PRIORITY_SQL = `(${PRIORITY_EVENT_PATTERNS.map((p) => `type LIKE '${p}'`).join(' OR ')})`;

/** SQL condition selecting a stream's rows of its table (besides the seq bound). */
export function streamFilter(stream: Stream): string {
  return stream === 'priority' ? PRIORITY_SQL : stream === 'events' ? `NOT ${PRIORITY_SQL}` : 'TRUE';
}
