/**
 * The archive targets ebr knows, by the name used in `target.type`, each registered with the schema of
 * the keys its `target:` section takes (the config refuses any other key, naming these).
 */
import type { z } from 'zod';
import type { ArchiveTarget, TargetSettings } from './archive-target.js';
import { dirSettings, dirTarget } from './dir-target.js';
import { s3Settings, s3Target } from './s3/index.js';
import { tarSettings, tarTarget } from './tar-target.js';
import { tapeSettings, tapeTarget } from './tape/st-target.js';
import { vtapeSettings, vtapeTarget } from './tape/vtape-target.js';

type TargetFactory = (settings: TargetSettings) => ArchiveTarget;

const registered: Record<string, { create: TargetFactory; settings: z.AnyZodObject }> = {
  dir: { create: (s) => dirTarget(dirSettings.parse(s)), settings: dirSettings },
  tar: { create: (s) => tarTarget(tarSettings.parse(s)), settings: tarSettings },
  vtape: { create: (s) => vtapeTarget(vtapeSettings.parse(s)), settings: vtapeSettings },
  tape: { create: (s) => tapeTarget(tapeSettings.parse(s)), settings: tapeSettings },
  s3: { create: (s) => s3Target(s3Settings.parse(s)), settings: s3Settings },
};

export const archiveTargets: Record<string, TargetFactory> = Object.fromEntries(Object.entries(registered).map(([k, v]) => [k, v.create]));

/** The schema of each target's `target:` section, `type` included. */
export const targetSettingsSchemas: Record<string, z.AnyZodObject> = Object.fromEntries(Object.entries(registered).map(([k, v]) => [k, v.settings]));
