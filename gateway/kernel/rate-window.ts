// Fixed-window counters keyed by source address or token. Bounded: at most `maxKeys`
// windows are tracked; a new key past that forgets the window that started earliest
// (so a flood of addresses costs memory only up to the bound, and at worst resets an
// old counter early).

export interface WindowState {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

interface Window {
  start: number;
  count: number;
}

export class WindowLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  private current(key: string, windowMs: number, now: number): Window | undefined {
    const w = this.windows.get(key);
    if (w && now - w.start < windowMs) return w;
    if (w) this.windows.delete(key);
    return undefined;
  }

  private state(w: Window | undefined, max: number, windowMs: number, now: number): WindowState {
    const count = w?.count ?? 0;
    return { allowed: count <= max, limit: max, remaining: Math.max(0, max - count), resetMs: w ? w.start + windowMs - now : windowMs };
  }

  /** The state without counting (is this key already over its limit?). */
  peek(key: string, now = Date.now(), max = this.max, windowMs = this.windowMs): WindowState {
    const w = this.current(key, windowMs, now);
    const s = this.state(w, max, windowMs, now);
    return { ...s, allowed: (w?.count ?? 0) < max };
  }

  /** Counts one hit; `allowed` is false once the window holds more than `max`. */
  hit(key: string, now = Date.now(), max = this.max, windowMs = this.windowMs): WindowState {
    let w = this.current(key, windowMs, now);
    if (!w) {
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    return this.state(w, max, windowMs, now);
  }

  get size(): number {
    return this.windows.size;
  }
}
