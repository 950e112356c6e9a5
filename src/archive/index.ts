/** The archive targets ebr knows, by the name used in `target.type`. */
import type { ArchiveTarget, TargetSettings } from './archive-target.js';
import { dirTarget } from './dir-target.js';
import { tarTarget } from './tar-target.js';

export const archiveTargets: Record<string, (settings: TargetSettings) => ArchiveTarget> = {
  dir: dirTarget,
  tar: tarTarget,
};
