// Rate-limited logging for events that anyone can cause in bulk (a user
// writing malformed rows: each one a fold error). Up to `perWindow` lines a
// window; the rest are counted, and the next line that gets through says
// how many were left out. Pure apart from the clock it is given.

export class LogRate {
  private windowStart = Number.NEGATIVE_INFINITY;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly perWindow = 20,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** null = leave this line out; else log it, with how many were left out since the last one. */
  take(): { suppressedBefore: number } | null {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.used = 0;
    }
    if (this.used >= this.perWindow) {
      this.suppressed += 1;
      return null;
    }
    this.used += 1;
    const suppressedBefore = this.suppressed;
    this.suppressed = 0;
    return { suppressedBefore };
  }
}
