/**
 * Every failure ebr reports is an EbrError with a stable code from this one table. The code decides
 * the exit status; the message says what went wrong, the hint says what the user can do about it.
 */
export const errorCodes = {
  usage: { exit: 2 },
  config: { exit: 2 },
  unknownInstance: { exit: 2 },
  unknownSpace: { exit: 2 },
  criticalSpace: { exit: 2 },
  unknownBackup: { exit: 2 },
  locked: { exit: 1 },
  inUse: { exit: 1 },
  connect: { exit: 1 },
  discover: { exit: 1 },
  block: { exit: 1 },
  windowExceeded: { exit: 1 },
  snapshot: { exit: 1 },
  stream: { exit: 1 },
  archive: { exit: 1 },
  digestMismatch: { exit: 1 },
  /** An incremental whose chain lost a backup: it cannot be restored (a failure, not a wrong argument). */
  brokenChain: { exit: 1 },
  unsafePath: { exit: 1 },
  restore: { exit: 1 },
  logArchive: { exit: 1 },
  cancelled: { exit: 1 },
  runnerDied: { exit: 1 },
  catalog: { exit: 1 },
  internal: { exit: 1 },
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** Where an error happened: everything a DBA needs to find the spot. */
export interface ErrorContext {
  instance?: string;
  backupId?: string;
  phase?: string;
  space?: string;
  path?: string;
  member?: string;
  [key: string]: unknown;
}

export class EbrError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly context: ErrorContext;
  /** Set when the release that followed a failure failed as well; the first failure stays the message. */
  releaseError?: unknown;

  constructor(code: ErrorCode, message: string, options: { hint?: string; context?: ErrorContext; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EbrError';
    this.code = code;
    this.hint = options.hint;
    this.context = options.context ?? {};
  }

  get exitCode(): number {
    return errorCodes[this.code].exit;
  }

  /** The same error with more context; fields already set win over the new ones. */
  withContext(context: ErrorContext): this {
    Object.assign(this.context, { ...context, ...this.context });
    return this;
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      hint: this.hint,
      context: this.context,
      cause: this.cause instanceof Error ? this.cause.message : this.cause,
      releaseError: this.releaseError instanceof Error ? this.releaseError.message : this.releaseError,
    };
  }
}

/** Wraps anything thrown into an EbrError, keeping the original as cause. */
export function asEbrError(err: unknown, code: ErrorCode, context: ErrorContext = {}): EbrError {
  if (err instanceof EbrError) return err.withContext(context);
  if (isAbort(err)) return new EbrError('cancelled', 'cancelled', { context, cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new EbrError(code, message, { context, cause: err });
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}

/** Throws the signal's reason as a cancelled EbrError; call between phases. */
export function throwIfAborted(signal: AbortSignal | undefined, context: ErrorContext = {}): void {
  if (!signal?.aborted) return;
  const reason = signal.reason;
  if (reason instanceof EbrError) throw reason;
  throw new EbrError('cancelled', `cancelled${reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : ''}`, { context });
}
