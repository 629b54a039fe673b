/**
 * How the C allocator keeps memory for a long-running process.
 *
 * glibc's malloc raises its mmap threshold every time a large block is freed, up to 32 MiB,
 * after which large buffers (snapshot copies, SQLite and HTTP buffers) come from the heap and
 * their pages stay in the process after they are freed. One `walsync watch` of 100 idle
 * databases kept about 26 MiB that way after its first snapshots (docs/benchmarks-watch.md).
 * Fixing both thresholds at 128 KiB, glibc's default start, returns them to the system, as
 * `MALLOC_TRIM_THRESHOLD_=131072` in the environment does.
 * @module
 */

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
const thresholdBytes = 128 * 1024;

/** Whether the operator set malloc's thresholds in the environment; theirs win. */
function setByOperator(): boolean {
  return Deno.env.get("MALLOC_TRIM_THRESHOLD_") !== undefined ||
    Deno.env.get("MALLOC_MMAP_THRESHOLD_") !== undefined ||
    /glibc\.malloc\./.test(Deno.env.get("GLIBC_TUNABLES") ?? "");
}

/**
 * Fixes glibc's trim and mmap thresholds at 128 KiB. Does nothing, quietly, off Linux, without
 * glibc, without the `--allow-ffi` and `--allow-env` permissions (it never prompts), or when
 * the environment sets malloc thresholds itself. Returns whether they were set.
 */
export function tuneMalloc(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    if (
      Deno.permissions.querySync({ name: "ffi" }).state !== "granted" ||
      Deno.permissions.querySync({ name: "env" }).state !== "granted"
    ) {
      return false;
    }
    if (setByOperator()) return false;
    const libc = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" },
    });
    try {
      // mallopt returns 1 on success.
      return libc.symbols.mallopt(M_MMAP_THRESHOLD, thresholdBytes) === 1 &&
        libc.symbols.mallopt(M_TRIM_THRESHOLD, thresholdBytes) === 1;
    } finally {
      libc.close();
    }
  } catch {
    // Not glibc (musl has no libc.so.6), or FFI unavailable: the defaults stay.
    return false;
  }
}
