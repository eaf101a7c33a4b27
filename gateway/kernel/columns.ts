// The one list of the readings and events columns. The gateway's tables, the cloud's
// tables (which add gateway_id, site and stream in front) and the sync batch files are
// all derived from it, so none of them can drift from the others.

export interface Column {
  name: string;
  type: 'BIGINT' | 'TIMESTAMPTZ' | 'VARCHAR' | 'DOUBLE' | 'JSON';
  nullable: boolean;
}

// Booleans are stored as value 1/0 with text 'true'/'false' so they round-trip.
export const READING_COLUMNS: readonly Column[] = [
  { name: 'seq', type: 'BIGINT', nullable: false },
  { name: 'ts', type: 'TIMESTAMPTZ', nullable: false },
  { name: 'device', type: 'VARCHAR', nullable: false },
  { name: 'point', type: 'VARCHAR', nullable: false },
  { name: 'value', type: 'DOUBLE', nullable: true },
  { name: 'text', type: 'VARCHAR', nullable: true },
  { name: 'unit', type: 'VARCHAR', nullable: true },
  { name: 'quality', type: 'VARCHAR', nullable: true },
];

export const EVENT_COLUMNS: readonly Column[] = [
  { name: 'seq', type: 'BIGINT', nullable: false },
  { name: 'id', type: 'VARCHAR', nullable: false },
  { name: 'time', type: 'TIMESTAMPTZ', nullable: false },
  { name: 'type', type: 'VARCHAR', nullable: false },
  { name: 'source', type: 'VARCHAR', nullable: false },
  { name: 'subject', type: 'VARCHAR', nullable: true },
  { name: 'data', type: 'JSON', nullable: true },
];

/** `CREATE TABLE IF NOT EXISTS` for `columns`, after any `leading` ones. */
export function tableDdl(table: string, columns: readonly Column[], leading: readonly Column[] = []): string {
  const defs = [...leading, ...columns].map((c) => `${c.name} ${c.type}${c.nullable ? '' : ' NOT NULL'}`);
  return `CREATE TABLE IF NOT EXISTS ${table} (\n  ${defs.join(',\n  ')}\n)`;
}

/** The type a column has in a batch file: JSON travels as text. */
export const wireType = (c: Column): string => (c.type === 'JSON' ? 'VARCHAR' : c.type);
