// Local wall-clock time in the site's time zone, for `time` conditions. Pure: Intl only.
//
// Intl.DateTimeFormat#formatToParts costs microseconds, too much to call per reading, so we
// cache the zone's UTC offset per 15-minute UTC bucket. The offset is checked at both ends of
// the bucket; a bucket that contains a DST (or any other offset) change is not cached and
// each moment in it is converted exactly, so transitions are always handled correctly.

const MINUTE = 60_000;
const DAY_MINUTES = 1440;
const BUCKET = 15 * MINUTE;
const CACHE_LIMIT = 4096;

export class LocalClock {
  private readonly fmt: Intl.DateTimeFormat;
  private readonly cache = new Map<number, number | null>(); // bucket → offset (null: changes inside)
  private lastBucket = Number.NaN;
  private lastOffset: number | null = null;

  /** Throws a RangeError for an unknown IANA time zone. */
  constructor(readonly timeZone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** The zone's offset from UTC at `ts`, in ms (local = utc + offset). Exact, uncached. */
  offsetAt(ts: number): number {
    const whole = Math.floor(ts / 1000) * 1000;
    let y = 1970,
      mo = 1,
      d = 1,
      h = 0,
      mi = 0,
      s = 0;
    for (const p of this.fmt.formatToParts(whole)) {
      const n = Number(p.value);
      switch (p.type) {
        case 'year':
          y = n;
          break;
        case 'month':
          mo = n;
          break;
        case 'day':
          d = n;
          break;
        case 'hour':
          h = n === 24 ? 0 : n;
          break; // some ICU builds print midnight as 24
        case 'minute':
          mi = n;
          break;
        case 'second':
          s = n;
          break;
      }
    }
    return Date.UTC(y, mo - 1, d, h, mi, s) - whole;
  }

  /** Local minutes since 1970-01-01T00:00 local: feed to minuteOfDay / weekday. */
  localMinutes(ts: number): number {
    const bucket = Math.floor(ts / BUCKET);
    let offset: number | null;
    if (bucket === this.lastBucket) offset = this.lastOffset;
    else {
      const cached = this.cache.get(bucket);
      if (cached !== undefined) offset = cached;
      else {
        const start = bucket * BUCKET;
        const a = this.offsetAt(start);
        offset = a === this.offsetAt(start + BUCKET - 1000) ? a : null;
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(bucket, offset);
      }
      this.lastBucket = bucket;
      this.lastOffset = offset;
    }
    return Math.floor((ts + (offset ?? this.offsetAt(ts))) / MINUTE);
  }
}

/** 0..1439 */
export function minuteOfDay(localMinutes: number): number {
  return ((localMinutes % DAY_MINUTES) + DAY_MINUTES) % DAY_MINUTES;
}

/** 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday, index 3). */
export function weekday(localMinutes: number): number {
  const day = Math.floor(localMinutes / DAY_MINUTES);
  return (((day + 3) % 7) + 7) % 7;
}

/** "HH:MM" → minutes after local midnight; "24:00" is allowed as the end of the day. */
export function parseTimeOfDay(hhmm: string): number {
  const m = /^([0-2][0-9]):([0-5][0-9])$/.exec(hhmm);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  if (!(minutes <= DAY_MINUTES)) throw new Error(`"${hhmm}" is not a time of day between 00:00 and 24:00`);
  return minutes;
}
