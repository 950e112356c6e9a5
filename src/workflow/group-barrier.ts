/**
 * The barrier of a consistency group: inside the window every member waits until all are blocked
 * before it freezes its storage, and until all are frozen before it is released. So there is one
 * instant at which every member was blocked and every snapshot holds that instant's state. A member
 * that fails before the last barrier fails all of them (each is released by its own gate).
 */
import { EbrError } from '../errors.js';

export type GroupStage = 'blocked' | 'frozen';

export class GroupBarrier {
  private readonly arrived: Record<GroupStage, Set<string>> = { blocked: new Set(), frozen: new Set() };
  private readonly waiters: Array<{ stage: GroupStage; resolve: () => void; reject: (e: unknown) => void }> = [];
  private failure: Error | undefined;
  /** performance.now() when the first member was blocked, when all were, and when the last was released. */
  firstBlockedAt?: number;
  allBlockedAt?: number;
  /** Wall-clock time at which every member was blocked: the group's instant. */
  instant?: string;
  lastReleasedAt?: number;

  private readonly earlyLeft: Set<string>;
  private earlyWaiters: Array<() => void> = [];

  /**
   * `early`: members whose backup is consistent as of their unblock rather than their freeze
   * (capabilities.consistentAtUnblock): they are released first, while the others still hold their
   * writers, so that every member's consistency point falls inside the one instant the group shares.
   */
  constructor(readonly group: string, private readonly members: string[], early: string[] = []) {
    this.earlyLeft = new Set(early);
  }

  /** An early member was released (or will never be): the others may go. */
  earlyReleased(member: string): void {
    if (this.earlyLeft.delete(member) && this.earlyLeft.size === 0) for (const w of this.earlyWaiters.splice(0)) w();
  }

  /** Resolves once every early member was released or has failed; never rejects (a late member must always be released). */
  awaitEarly(): Promise<void> {
    if (this.earlyLeft.size === 0 || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.earlyWaiters.push(resolve));
  }

  /** Resolves once every member arrived at `stage`; rejects when one failed or the signal aborts. */
  arrive(member: string, stage: GroupStage, signal: AbortSignal): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.arrived[stage].add(member);
    if (stage === 'blocked') this.firstBlockedAt ??= performance.now();
    if (this.arrived[stage].size === this.members.length) {
      if (stage === 'blocked') {
        this.allBlockedAt = performance.now();
        this.instant = new Date().toISOString();
      }
      for (const w of this.waiters.filter((x) => x.stage === stage)) w.resolve();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push({
        stage,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
    });
  }

  /** A member failed: every member still waiting, and every one arriving later, fails with it. */
  fail(member: string, err: unknown): void {
    if (this.failure) return;
    this.failure = new EbrError('block', `member ${member} of group ${this.group} failed, so no member's snapshot can be kept: ${(err as Error).message}`, {
      hint: `see the error of ${member}'s backup (\`ebr show\`); every member was released`,
      context: { group: this.group, instance: member },
    });
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
    for (const w of this.earlyWaiters.splice(0)) w();
  }

  released(): void {
    this.lastReleasedAt = performance.now();
  }

  /** From the first member blocked to the last released, in ms. */
  get windowMs(): number | undefined {
    return this.firstBlockedAt !== undefined && this.lastReleasedAt !== undefined ? this.lastReleasedAt - this.firstBlockedAt : undefined;
  }
}
