/**
 * Reading a file at an offset until a buffer is full.
 *
 * Asynchronous: never use it on a database file or `-shm` that SQLite holds locks on in this
 * process (docs/sqlite-facts.md, fact 9); read those through `held_file.ts`.
 * @module
 */

/**
 * Fills `buffer` from `offset` of `file` (seek, then reads until full); returns how many bytes
 * it read, fewer only at the end of the file. Moves the descriptor's position.
 *
 * @example
 * ```ts
 * const header = new Uint8Array(32);
 * if ((await readAt(wal, 0, header)) < header.byteLength) throw new Error("short WAL");
 * ```
 */
export async function readAt(
  file: Deno.FsFile,
  offset: number,
  buffer: Uint8Array,
): Promise<number> {
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.byteLength) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}
