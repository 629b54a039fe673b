/**
 * Writing a whole buffer to a file.
 * @module
 */

/** Bytes per `write` call of {@link writeAll}: each call is one operation on a blocking thread. */
const asyncWriteCall = 256 * 1024;

/**
 * Bytes per `write` call of {@link writeAllSync}.
 *
 * Linux (6.18 here) gives a buffered write of N bytes page-cache folios of about N bytes, up to
 * 2 MiB. On this project's test VMs, large folios came slowly whenever the memory free at the
 * time had last held a file written in small calls (curl writes 16 KiB at a time), most likely
 * blocks the VM's balloon had handed back to the host, which the host then maps in again.
 * Writing 1 GiB from Deno right after deleting such a file took 1.01-1.70 s in 256 KiB calls,
 * 0.47-0.68 s in 16 KiB calls and 0.31-0.49 s in 64 KiB calls; into memory just freed by large
 * folios, 0.2-0.3 s in all three. A 1 GiB restore took a median 2.40 s in 256 KiB calls on a
 * blocking thread and 1.88 s in 64 KiB calls, six runs each alternating, with curl's GET at
 * 1.0-1.4 s (docs/benchmarks.md).
 */
export const pageCacheWrite = 64 * 1024;

/**
 * Writes all of `bytes` at the file's position, in calls of at most 256 KiB, each on a blocking
 * thread.
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
    written += await file.write(bytes.subarray(written, written + asyncWriteCall));
  }
}

/**
 * Writes all of `bytes` at the file's position before returning, in `write` calls of at most
 * 64 KiB ({@link pageCacheWrite}). It holds the calling thread for the copy into the page cache,
 * about 0.3 ms per MiB (20 µs a call), where each call as an operation on a blocking thread would
 * cost about 60 µs more. For a large file written front to back, such as a restore's snapshot; a
 * disk that throttles its writers holds the thread as long.
 *
 * @example
 * ```ts
 * const file = await Deno.open("out.bin", { write: true, createNew: true });
 * writeAllSync(file, new Uint8Array(8 * 1024 * 1024));
 * ```
 */
export function writeAllSync(file: Pick<Deno.FsFile, "writeSync">, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.byteLength) {
    const end = Math.min(bytes.byteLength, written + pageCacheWrite);
    written += file.writeSync(bytes.subarray(written, end));
  }
}
