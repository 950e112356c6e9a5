/**
 * Database drivers are loaded by name, the first time an adapter talks to its server: loading the
 * config, or `ebr log push`, never loads a native driver it does not use.
 *
 * `EBR_DRIVER_<NAME>` (the package name upper-cased, other characters as `_`: EBR_DRIVER_ORACLEDB)
 * names a module to load instead. The tests point it at stand-ins for servers that cannot run on a
 * test machine; a DBA can use it to load a driver installed somewhere else.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EbrError } from '../errors.js';

export function driverOverrideVariable(pkg: string): string {
  return `EBR_DRIVER_${pkg.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * The driver module's default export (or the namespace when it has none). `load` is the adapter's own
 * `() => import('<pkg>')`, so the package is named where it is used.
 */
export async function loadDriver<T>(pkg: string, load: () => Promise<unknown>, context: Record<string, unknown> = {}): Promise<T> {
  const variable = driverOverrideVariable(pkg);
  const override = process.env[variable];
  let mod: { default?: T } & Record<string, unknown>;
  try {
    mod = (override ? await import(pathToFileURL(path.resolve(override)).href) : await load()) as typeof mod;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
    throw new EbrError('connect', override ? `cannot load the driver ${override} (from $${variable}): ${(err as Error).message}` : missing ? `the Node.js driver "${pkg}" is not installed` : `cannot load the Node.js driver "${pkg}": ${(err as Error).message}`, {
      hint: override ? `fix or unset $${variable}` : missing ? `install it beside ebr: npm install ${pkg}` : `reinstall it: npm install ${pkg}`,
      context: { ...context, driver: pkg },
      cause: err,
    });
  }
  return (mod.default ?? mod) as T;
}
