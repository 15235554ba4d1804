// Paces bytes to a rate (scp -l): callers await take(n) before sending n bytes.
export class BandwidthLimiter {
  private readonly started = Date.now();
  private sent = 0;

  constructor(private readonly bytesPerSecond: number) {}

  /** Whether take() can ever wait (callers skip it otherwise: an await costs a turn of the microtask queue). */
  get active(): boolean {
    return this.bytesPerSecond > 0;
  }

  async take(bytes: number): Promise<void> {
    if (this.bytesPerSecond <= 0) return;
    this.sent += bytes;
    const due = this.started + (this.sent / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
