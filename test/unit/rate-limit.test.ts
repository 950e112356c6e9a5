/** The token bucket of ioLimitMBps, on a clock the test moves by hand: nothing here waits for real time. */
import { describe, expect, it } from 'vitest';
import { RateLimiter, type Clock } from '../../src/util/rate-limit.js';

/** A clock that moves only when told; sleepers wake when it passes their time. */
class ManualClock implements Clock {
  t = 0;
  readonly asked: number[] = [];
  private sleepers: Array<{ at: number; wake: () => void }> = [];
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.asked.push(ms);
    return new Promise((resolve, reject) => {
      const s = { at: this.t + ms, wake: resolve };
      this.sleepers.push(s);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        reject(signal.reason);
      }, { once: true });
    });
  }
  get sleeping(): number {
    return this.sleepers.length;
  }
  /** Moves time on and lets the promise callbacks of those woken run. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t + 1e-9);
    this.sleepers = this.sleepers.filter((s) => !due.includes(s));
    for (const s of due) s.wake();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

/** A clock whose sleeps pass at once, moving time by what was asked: a single taker's timeline. */
function jumpingClock() {
  const c = { t: 0, asked: [] as number[] };
  const clock: Clock = {
    now: () => c.t,
    sleep: async (ms) => {
      c.asked.push(ms);
      c.t += ms;
    },
  };
  return { c, clock };
}

const MB = 1_000_000;

describe('RateLimiter', () => {
  it('lets the burst through at once, then holds the average at the rate', async () => {
    const { c, clock } = jumpingClock();
    const rl = new RateLimiter(10 * MB, 1 * MB, clock);
    await rl.take(1 * MB);
    expect(c.asked).toEqual([]);
    // 40 MB more in 4 MB pieces at 10 MB/s: 4 s, each piece waiting 0.4 s once the burst is spent.
    for (let i = 0; i < 10; i++) await rl.take(4 * MB);
    expect(c.asked.length).toBe(10);
    expect(c.t).toBeCloseTo(4000, 6);
    expect(rl.stats).toMatchObject({ bytes: 41 * MB, waits: 10 });
    expect(rl.stats.waitedMs).toBeCloseTo(4000, 6);
  });

  it('refills while idle, but never beyond the burst', async () => {
    const { c, clock } = jumpingClock();
    const rl = new RateLimiter(10 * MB, 2 * MB, clock);
    await rl.take(2 * MB);
    c.t += 60_000; // a minute idle buys no more than the burst
    await rl.take(2 * MB);
    expect(c.asked).toEqual([]);
    await rl.take(1 * MB);
    expect(c.asked).toEqual([100]);
  });

  it('does not sleep for debts under a millisecond; the next take pays them', async () => {
    const { c, clock } = jumpingClock();
    const rl = new RateLimiter(10 * MB, 1, clock);
    for (let i = 0; i < 5; i++) await rl.take(1000); // 0.1 ms each
    expect(c.asked).toEqual([]);
    await rl.take(10_000); // 1 ms of its own plus the 0.5 ms left by the others
    expect(c.asked.length).toBe(1);
    expect(c.asked[0]).toBeCloseTo(1.5, 3);
  });

  it('is shared: two concurrent readers together get the rate, served in order', async () => {
    const clock = new ManualClock();
    const rl = new RateLimiter(1 * MB, 1, clock);
    const done: string[] = [];
    const a = rl.take(1 * MB).then(() => done.push('a'));
    const b = rl.take(1 * MB).then(() => done.push('b'));
    await clock.advance(0);
    expect(clock.asked.map(Math.round)).toEqual([1000, 2000]);
    await clock.advance(999);
    expect(done).toEqual([]);
    await clock.advance(1);
    expect(done).toEqual(['a']);
    await clock.advance(1000);
    expect(done).toEqual(['a', 'b']);
    await Promise.all([a, b]);
    expect(rl.stats.bytes).toBe(2 * MB);
  });

  it('an abort while waiting rejects with the reason and hands the bytes back', async () => {
    const clock = new ManualClock();
    const rl = new RateLimiter(1 * MB, 1, clock);
    const ac = new AbortController();
    const first = rl.take(1 * MB, ac.signal);
    await clock.advance(0);
    expect(clock.sleeping).toBe(1);
    ac.abort(new Error('stopped'));
    await expect(first).rejects.toThrow('stopped');
    expect(rl.stats).toMatchObject({ bytes: 0, waits: 0 });
    // The aborted megabyte is not paid for by the next taker.
    const next = rl.take(1 * MB);
    await clock.advance(0);
    expect(clock.asked.at(-1)).toBeCloseTo(1000, 2);
    await clock.advance(1000);
    await next;
    // Already aborted: refused before taking anything.
    await expect(rl.take(10, ac.signal)).rejects.toThrow('stopped');
    expect(rl.stats.bytes).toBe(1 * MB);
  });

  it('throttle passes every buffer through unchanged, each after its bytes may pass', async () => {
    const { c, clock } = jumpingClock();
    const rl = new RateLimiter(1 * MB, 1, clock);
    async function* source() {
      yield Buffer.alloc(500_000, 1);
      yield Buffer.alloc(250_000, 2);
    }
    const got: Buffer[] = [];
    for await (const b of rl.throttle(source())) got.push(b);
    expect(got.map((b) => [b.length, b[0]])).toEqual([[500_000, 1], [250_000, 2]]);
    expect(c.t).toBeCloseTo(750, 2);
    expect(rl.stats.waits).toBe(2);
  });

  it('refuses a rate that is not a positive number', () => {
    expect(() => new RateLimiter(0)).toThrow(RangeError);
    expect(() => new RateLimiter(-1)).toThrow(RangeError);
    expect(() => new RateLimiter(Number.NaN)).toThrow(RangeError);
    expect(() => new RateLimiter(Infinity)).toThrow(RangeError);
  });
});
