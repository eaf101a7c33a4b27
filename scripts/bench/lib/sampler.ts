// Peak RSS and JS heap of this process, sampled on a timer while a scenario runs.

export class Sampler {
  private timer: NodeJS.Timeout | null = null;
  peakRss = 0;
  peakHeapUsed = 0;

  constructor(private readonly everyMs: number) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
  }

  /** Subclasses add their own peaks (call super.sample()). */
  protected sample(): void {
    const m = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, m.heapUsed);
  }
}
