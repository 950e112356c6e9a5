/** The one way a codec says a stored stream cannot be decoded: an archive error naming the stream and where. */
import { EbrError, type ErrorContext } from '../../errors.js';

export const damagedHint = 'the archive was changed or damaged after the backup; restore another backup (`ebr list`) or its copy';

/** `label` is the stream's name for the user (a space's stream, a meta file, a log). */
export function damagedStream(label: string, message: string, context: ErrorContext = {}, cause?: unknown): EbrError {
  return new EbrError('archive', `${label}: ${message}`, { hint: damagedHint, context: { path: label, ...context }, ...(cause === undefined ? {} : { cause }) });
}

/** The message of whatever a library threw, for the end of ours. */
export function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
