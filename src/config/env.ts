/** `${NAME}` references in config strings, so secrets live in the environment and not in the file. */
import { EbrError } from '../errors.js';

const reference = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces every `${NAME}` in every string of a parsed YAML tree; a missing variable names its key. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv, key = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(reference, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        throw new EbrError('config', `config key ${key || '(root)'} refers to \${${name}}, which is not set in the environment`, {
          hint: `export ${name}=… before running ebr, or write the value into the config`,
          context: { key },
        });
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, `${key}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, key ? `${key}.${k}` : k)]));
  }
  return value;
}
