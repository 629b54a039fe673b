/**
 * How the C allocator keeps memory for a long-running process.
 *
 * glibc's malloc raises its mmap threshold every time a large block is freed, up to 32 MiB,
 * after which large buffers (snapshot copies, SQLite and HTTP buffers) come from the heap and
 * their pages stay in the process after they are freed. One `walsync watch` of 100 idle
 * databases kept about 26 MiB that way after its first snapshots (docs/benchmarks-watch.md).
 * Fixing both thresholds at 128 KiB, glibc's default start, returns them to the system, as
 * `MALLOC_TRIM_THRESHOLD_=131072` in the environment does.
 *
 * The thresholds only return memory at the top of the heap. Under a steady trickle of uploads
 * the heap fragments: free pages sit between live blocks and stay resident. `malloc_trim(0)`
 * gives those back too, so a long-running process calls it every few seconds
 * ({@link trimMallocEvery}).
 * @module
 */

/** glibc's `mallopt` parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
const thresholdBytes = 128 * 1024;

/** Whether FFI and env are granted (checked without prompting). */
function ffiAllowed(): boolean {
  return Deno.permissions.querySync({ name: "ffi" }).state === "granted" &&
    Deno.permissions.querySync({ name: "env" }).state === "granted";
}

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
    if (!ffiAllowed() || setByOperator()) return false;
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

/**
 * Calls glibc's `malloc_trim(0)` every `intervalMs`, returning free heap pages to the system,
 * on a timer that never keeps the process alive. Does nothing (and returns a no-op) off Linux,
 * without glibc, or without the `--allow-ffi` and `--allow-env` permissions. Returns a
 * function that stops it.
 */
export function trimMallocEvery(intervalMs: number): () => void {
  if (Deno.build.os !== "linux") return () => {};
  try {
    if (!ffiAllowed()) return () => {};
    const libc = Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32" },
    });
    const timer = setInterval(() => libc.symbols.malloc_trim(0n), intervalMs);
    Deno.unrefTimer(timer as unknown as number);
    return () => {
      clearInterval(timer);
      libc.close();
    };
  } catch {
    return () => {};
  }
}
