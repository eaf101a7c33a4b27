// A typed event bus: one generic emitter instead of an on/emit pair per event.
import { EventEmitter } from 'node:events';
import type { OutpostEvent, Reading } from './contract/types.js';

export interface BusEvents {
  /** Readings accepted by a driver (not yet committed). */
  readings: [readings: readonly Reading[]];
  /** Readings the store has committed; safe to act on and to sync. */
  committed: [readings: readonly Reading[], events: readonly OutpostEvent[]];
  event: [event: OutpostEvent];
  'device.seen': [device: string, ts: number];
}

export class TypedBus<E extends { [K in keyof E]: unknown[] }> {
  private readonly ee = new EventEmitter({ captureRejections: false });

  constructor() {
    this.ee.setMaxListeners(100);
  }

  on<K extends keyof E & string>(name: K, fn: (...args: E[K]) => void): () => void {
    this.ee.on(name, fn as (...args: unknown[]) => void);
    return () => this.ee.off(name, fn as (...args: unknown[]) => void);
  }

  emit<K extends keyof E & string>(name: K, ...args: E[K]): void {
    this.ee.emit(name, ...args);
  }

  listenerCount(name: keyof E & string): number {
    return this.ee.listenerCount(name);
  }
}

export type Bus = TypedBus<BusEvents>;
export const createBus = (): Bus => new TypedBus<BusEvents>();
