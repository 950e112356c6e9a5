/**
 * A token bucket on bytes: `take(n)` lets n bytes through at `bytesPerSecond` on average, with at most
 * `burstBytes` through at once after an idle spell. Shared by every reader of one backup, so the limit
 * is the backup's, however many spaces stream at once. Takers are served in order: each reserves its
 * bytes at once (the bucket may go into debt) and waits until the debt it ran up is paid off, so a
 * taker of 4 MiB and one of 4 KiB never starve each other and the average never exceeds the rate.
 * Time comes from an injected clock, so it is tested without waiting.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after ms, rejects when signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, signal ? { signal } : {}),
};

export interface RateLimitStats {
  /** Bytes let through. */
  bytes: number;
  /** How many takes had to wait. */
  waits: number;
  /** The sum of the waits asked of the clock, in ms. */
  waitedMs: number;
}

/** Debts below this are not slept off on their own: the next take pays them (a timer costs more than it saves). */
const minSleepMs = 1;

export class RateLimiter {
  private tokens: number;
  private last: number;
  readonly stats: RateLimitStats = { bytes: 0, waits: 0, waitedMs: 0 };

  constructor(
    readonly bytesPerSecond: number,
    /** What may pass at once after an idle spell; default a quarter second's worth. */
    readonly burstBytes = Math.max(1, Math.floor(bytesPerSecond / 4)),
    private readonly clock: Clock = realClock,
  ) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new RangeError(`bytesPerSecond must be a positive number, not ${bytesPerSecond}`);
    if (!(burstBytes > 0)) throw new RangeError(`burstBytes must be positive, not ${burstBytes}`);
    this.tokens = burstBytes;
    this.last = clock.now();
  }

  /**
   * Waits until n bytes may pass. Aborted while waiting, it rejects with the signal's reason and hands
   * the bytes back to the bucket: they never went through, and the others must not pay for them.
   */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (n <= 0) return;
    this.refill();
    this.tokens -= n;
    const waitMs = this.tokens < 0 ? (-this.tokens / this.bytesPerSecond) * 1000 : 0;
    if (waitMs >= minSleepMs) {
      this.stats.waits++;
      this.stats.waitedMs += waitMs;
      try {
        await this.clock.sleep(waitMs, signal);
      } catch (err) {
        this.tokens += n;
        this.stats.waits--;
        this.stats.waitedMs -= waitMs;
        throw err;
      }
    }
    this.stats.bytes += n;
  }

  /** Passes an iterable's buffers through the bucket, each one after the bytes it holds may pass. */
  async *throttle(source: AsyncIterable<Buffer>, signal?: AbortSignal): AsyncGenerator<Buffer> {
    for await (const b of source) {
      await this.take(b.length, signal);
      yield b;
    }
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed / 1000) * this.bytesPerSecond);
  }
}
