/**
 * The pieces of a `--dry-run` plan that adapters share: steps, and a RestoreFiles that records what a
 * restorer's finish step would change instead of changing it. A restorer whose finish changes files
 * only through RestoreFiles and runs no command can plan by running finish on these.
 */
import type { FileAttributes, PlanStep, RestoreFiles } from './adapter-api.js';

export function sqlStep(phase: string, text: string): PlanStep {
  return { phase, kind: 'sql', text: text.trim().replace(/\s+/g, ' ') };
}
export function commandStep(phase: string, argv: string[], stdin?: string): PlanStep {
  return { phase, kind: 'command', text: argv.join(' ') + (stdin ? `\n${stdin.trimEnd()}` : '') };
}
export function noteStep(phase: string, text: string): PlanStep {
  return { phase, kind: 'note', text };
}

const mode = (a?: FileAttributes) => (a?.mode !== undefined ? ` mode ${a.mode.toString(8)}` : '');

/** A RestoreFiles that writes nothing and remembers each change as a step of `phase`. */
export function recordingFiles(phase = 'finish'): RestoreFiles & { steps: PlanStep[] } {
  const steps: PlanStep[] = [];
  const write = (text: string) => void steps.push({ phase, kind: 'write', text });
  return {
    steps,
    async writeFile(file, data, attrs) {
      write(`${file} (${Buffer.byteLength(data)} bytes${mode(attrs)})`);
    },
    async writeSparse(file, size, attrs) {
      write(`${file} (sparse, ${size} bytes${mode(attrs)})`);
    },
    async mkdir(dir, attrs) {
      write(`${dir}/ (directory${mode(attrs)})`);
    },
    async symlink(target, link) {
      write(`${link} → ${target} (symbolic link)`);
    },
    async setAside(p, o) {
      write(`${p} set aside${o?.keep ? ' and kept' : ''}${o?.as ? ` as ${o.as}` : ''}`);
      return o?.as ?? `${p}.ebr-old`;
    },
    async setAttributes(p, attrs) {
      write(`${p} attributes${mode(attrs)}${attrs.uid !== undefined ? ` owner ${attrs.uid}:${attrs.gid}` : ''}`);
    },
    async track() {},
    async ownProcess() {},
    async check() {},
  };
}
