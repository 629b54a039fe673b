/**
 * Temporary directories and what a test asks of files: names in a directory, permission bits.
 * @module
 */

/** The directory every working directory of this test process goes in; removed at exit. */
let parent: string | undefined;

function testRoot(): string {
  if (parent) return parent;
  const root = Deno.makeTempDirSync({ prefix: "walsync-tests-" });
  // A run leaves hundreds of megabytes of databases behind otherwise, and a machine that runs
  // the suite often fills its disk. WALSYNC_KEEP_TEST_DIRS=1 keeps them for a post-mortem.
  if (Deno.env.get("WALSYNC_KEEP_TEST_DIRS") !== "1") {
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(root, { recursive: true });
      } catch { /* a subprocess may still hold a file; the rest is gone */ }
    });
  }
  parent = root;
  return root;
}

/** A temporary working directory, removed when the test process exits. */
export function workDir(): Promise<string> {
  return Deno.makeTempDir({ dir: testRoot(), prefix: "walsync-test-" });
}

/**
 * A temporary directory named `prefix…` under the test process's root, removed at exit with
 * the rest (a `file://` bucket, a scratch folder a test does not clean itself).
 */
export function scratchDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ dir: testRoot(), prefix });
}

/** Files in a directory (names only). */
export async function filesIn(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

/** Permission bits of a file. */
export async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}
