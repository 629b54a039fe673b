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

/** How {@link withUnwritable} makes a path read-only here: as root, only `chattr +i` stops writes. */
function makeUnwritable(path: string, on: boolean, mode: number): boolean {
  if (Deno.uid() !== 0) {
    Deno.chmodSync(path, on ? mode & 0o7555 : mode & 0o7777);
    return true;
  }
  try {
    return new Deno.Command("chattr", { args: [on ? "+i" : "-i", path], stderr: "null" })
      .outputSync().success;
  } catch {
    return false; // no chattr on this machine
  }
}

let supported: boolean | undefined;

/**
 * Whether {@link withUnwritable} works on this machine: root needs `chattr` and the right to
 * set the immutable flag (a container may lack CAP_LINUX_IMMUTABLE). For `ignore:`.
 */
export function unwritableSupported(): boolean {
  if (supported !== undefined) return supported;
  const dir = Deno.makeTempDirSync({ prefix: "walsync-unwritable-probe-" });
  const file = `${dir}/f`;
  Deno.writeFileSync(file, new Uint8Array());
  supported = makeUnwritable(file, true, 0o644) && !writable(file, false);
  makeUnwritable(file, false, 0o644);
  Deno.removeSync(dir, { recursive: true });
  return supported;
}

/** Whether this process can write `path`: open a file for writing, or create a file in a directory. */
function writable(path: string, isDirectory: boolean): boolean {
  try {
    if (isDirectory) {
      Deno.writeFileSync(`${path}/.writable-probe`, new Uint8Array());
      Deno.removeSync(`${path}/.writable-probe`);
    } else {
      Deno.openSync(path, { write: true }).close();
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `body` while `path` (a file or a directory) cannot be written, even by root: `chattr +i`
 * as root (which permission bits do not stop), `chmod a-w` otherwise. No file can be created
 * in such a directory, and such a file opens for reading only. Throws when neither works here,
 * so a test that needs it cannot pass without it.
 */
export async function withUnwritable<T>(path: string, body: () => Promise<T>): Promise<T> {
  const stat = await Deno.stat(path);
  const mode = stat.mode ?? 0o644;
  if (!makeUnwritable(path, true, mode)) {
    throw new Error(`cannot make ${path} read-only here (as root this needs chattr +i)`);
  }
  try {
    if (writable(path, stat.isDirectory)) {
      throw new Error(`${path} can still be written; this test needs it read-only`);
    }
    return await body();
  } finally {
    makeUnwritable(path, false, mode);
  }
}
