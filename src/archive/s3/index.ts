/** The s3 target: its settings schema, the target, and the log store beside its backups. */
export { s3Settings, type S3Settings, type S3SettingsInput } from './s3-settings.js';
export { s3Target } from './s3-target.js';
export { s3LogStore } from './s3-log-store.js';
export type { S3Options } from './s3-client.js';
