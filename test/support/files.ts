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
 * Runs `body` while `path` (a file or a directory) cannot be written, even by root: `chattr +i`
 * as root (which permission bits do not stop), `chmod a-w` otherwise. No file can be created
 * in such a directory, and such a file opens for reading only. Throws when neither works here,
 * so a test that needs it cannot pass without it.
 */
export async function withUnwritable<T>(path: string, body: () => Promise<T>): Promise<T> {
  const root = Deno.uid() === 0;
  const stat = await Deno.stat(path);
  if (root) {
    const r = await new Deno.Command("chattr", { args: ["+i", path], stderr: "piped" }).output();
    if (!r.success) {
      throw new Error(`chattr +i ${path} failed: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
  } else {
    await Deno.chmod(path, (stat.mode ?? 0o644) & 0o7555);
  }
  try {
    if (await writable(path, stat.isDirectory)) {
      throw new Error(`${path} can still be written; this test needs it read-only`);
    }
    return await body();
  } finally {
    if (root) await new Deno.Command("chattr", { args: ["-i", path] }).output();
    else await Deno.chmod(path, (stat.mode ?? 0o644) & 0o7777);
  }
}

async function writable(path: string, isDirectory: boolean): Promise<boolean> {
  try {
    if (isDirectory) {
      await Deno.writeFile(`${path}/.writable-probe`, new Uint8Array());
      await Deno.remove(`${path}/.writable-probe`);
    } else {
      (await Deno.open(path, { write: true })).close();
    }
    return true;
  } catch {
    return false;
  }
}
