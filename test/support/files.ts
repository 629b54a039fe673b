/**
 * Temporary directories and what a test asks of files: names in a directory, permission bits.
 * @module
 */

/** A temporary working directory. */
export function workDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "walsync-test-" });
}

/** Files in a directory (names only). */
export async function filesIn(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** Permission bits of a file. */
export async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}
