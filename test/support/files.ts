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

/**
 * Runs `body` while no file can be created in `dir`, even by root: `chattr +i` as root (which
 * permission bits do not stop), `chmod a-w` otherwise. Throws when neither works here, so a
 * test that needs it cannot pass without it.
 */
export async function withUnwritableDirectory<T>(dir: string, body: () => Promise<T>): Promise<T> {
  const root = Deno.uid() === 0;
  const mode = (await Deno.stat(dir)).mode ?? 0o755;
  if (root) {
    const r = await new Deno.Command("chattr", { args: ["+i", dir], stderr: "piped" }).output();
    if (!r.success) {
      throw new Error(`chattr +i ${dir} failed: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
  } else {
    await Deno.chmod(dir, 0o555);
  }
  try {
    const probe = `${dir}/.writable-probe`;
    const created = await Deno.writeFile(probe, new Uint8Array()).then(() => true, () => false);
    if (created) {
      await Deno.remove(probe);
      throw new Error(`${dir} still takes new files; this test needs a directory it cannot write`);
    }
    return await body();
  } finally {
    if (root) await new Deno.Command("chattr", { args: ["-i", dir] }).output();
    else await Deno.chmod(dir, mode & 0o7777);
  }
}
