// Paces bytes to a rate (scp -l): callers await take(n) before sending n bytes.
//
// A token bucket: credit accrues at the rate up to `burst` (1 s worth by default) and each take() spends it.
// Time spent not sending (connecting, a retry's back-off, a slow disk) earns no more than that one burst,
// so the run never sends far above the limit to "catch up" on an average.

export interface PaceClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const systemPaceClock: PaceClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class BandwidthLimiter {
  private readonly burst: number;
  private readonly clock: PaceClock;
  /** Credit in bytes at `at`; negative while takers wait for bytes already granted to them. */
  private tokens: number;
  private at: number;

  /** `burstBytes` defaults to one second at the rate. */
  constructor(
    private readonly bytesPerSecond: number,
    options: { clock?: PaceClock; burstBytes?: number } = {},
  ) {
    this.clock = options.clock ?? systemPaceClock;
    this.burst = Math.max(1, options.burstBytes ?? bytesPerSecond);
    // A fresh limiter starts with one burst of credit, as if it had been idle.
    this.tokens = this.burst;
    this.at = this.clock.now();
  }

  /** Whether take() can ever wait (callers skip it otherwise: an await costs a turn of the microtask queue). */
  get active(): boolean {
    return this.bytesPerSecond > 0;
  }

  /**
   * Resolves when `bytes` may be sent. A take larger than the credit goes into debt and waits it out, so
   * concurrent takers (several channels) queue behind each other's grants and the total stays within
   * burst + rate x elapsed.
   */
  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0 || bytes <= 0) return;
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.bytesPerSecond);
    this.at = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await this.clock.sleep((-this.tokens / this.bytesPerSecond) * 1000);
  }
}
