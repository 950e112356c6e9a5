/**
 * execa, loaded on first use. It is ~260 modules: loading it up front cost every ebr command about
 * 0.2 s, including those that start no process (`ebr list`, `ebr wal get` once per segment).
 */
type Execa = (typeof import('execa'))['execa'];

let loading: Promise<typeof import('execa')> | undefined;

export async function loadExeca(): Promise<Execa> {
  loading ??= import('execa');
  return (await loading).execa;
}
