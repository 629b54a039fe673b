/**
 * Durability of renames: both storage writes and restores land a file with a rename, which
 * survives a crash only once the directory holding it is fsynced.
 * @module
 */

/**
 * Makes a rename durable: fsync of the directory that holds it.
 * @example
 * ```ts
 * await Deno.rename(temp, output);
 * await syncDirectory(dirname(output)); // the rename survives a power cut
 * ```
 */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename itself has happened.
  }
}
