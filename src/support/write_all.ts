/**
 * Writing a whole buffer to a file.
 * @module
 */

/**
 * Bytes per `write` call, also the slice a download hashes while it is written
 * (`storage/transfer/download.ts`). On this project's test VM (Linux 6.18, Firecracker),
 * writing 1 GiB into the page cache in 16 MiB calls cost 0.2 to 2.5 s of kernel time, in 256 KiB
 * calls 0.2 to 0.3 s; a 1 GiB restore took 2.12-2.26 s this way against 2.17-3.50 s
 * (docs/benchmarks.md).
 * 1 MiB calls were faster only while the memory the page cache takes was recently used: right
 * after a deleted file written in small calls (curl's), the restore took 2.31 s against 1.88 s.
 */
export const writeSlice = 256 * 1024;

/**
 * Writes all of `bytes` at the file's position, in calls of at most 256 KiB.
 *
 * @example
 * ```ts
 * const file = await Deno.open("out.bin", { write: true, createNew: true });
 * await writeAll(file, new Uint8Array(8 * 1024 * 1024));
 * ```
 */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) {
    written += await file.write(bytes.subarray(written, written + writeSlice));
  }
}
