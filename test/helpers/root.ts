/** Tests that need root fail saying so (never skip): the suite runs as root, as `.ci/run` does. */
export function needRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`this test needs root (${what}); run the test suite as root`);
}
