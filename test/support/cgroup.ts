/**
 * A memory cgroup to run a command in: its limit bounds anonymous memory and page cache
 * together, as a container's or a systemd unit's `MemoryMax` does. Linux, root, cgroup v1 or v2
 * with the memory controller; `memoryGroup` returns null elsewhere.
 * @module
 */
import { join } from "node:path";

/** A memory cgroup: where to put a process, its peak charge, and its removal. */
export interface MemoryGroup {
  /** Its `cgroup.procs` file: a pid written there moves into the group. */
  procs: string;
  /** Forgets the peak so far (where the kernel allows it). */
  resetPeak(): void;
  /** The highest charge so far, in bytes. */
  peak(): number;
  /** Removes the group (it must be empty). */
  remove(): void;
}

/** Sets the group's limit; a group that cannot take one is removed again before the throw. */
function limit(dir: string, file: string, bytes: number): void {
  try {
    Deno.writeTextFileSync(join(dir, file), String(bytes));
  } catch (err) {
    try {
      Deno.removeSync(dir);
    } catch { /* not ours to remove */ }
    throw err;
  }
}

/** A new memory cgroup named `name` limited to `bytes`, or null when this machine has none. */
export function memoryGroup(name: string, bytes: number): MemoryGroup | null {
  const v1 = "/sys/fs/cgroup/memory";
  try {
    Deno.statSync(join(v1, "memory.limit_in_bytes"));
    const dir = join(v1, name);
    Deno.mkdirSync(dir, { recursive: true });
    limit(dir, "memory.limit_in_bytes", bytes);
    return {
      procs: join(dir, "cgroup.procs"),
      resetPeak: () => Deno.writeTextFileSync(join(dir, "memory.max_usage_in_bytes"), "0"),
      peak: () => Number(Deno.readTextFileSync(join(dir, "memory.max_usage_in_bytes"))),
      remove: () => Deno.removeSync(dir),
    };
  } catch { /* not v1: try v2 */ }
  try {
    const controllers = Deno.readTextFileSync("/sys/fs/cgroup/cgroup.controllers");
    if (!controllers.split(/\s+/).includes("memory")) return null;
    const dir = join("/sys/fs/cgroup", name);
    Deno.mkdirSync(dir, { recursive: true });
    limit(dir, "memory.max", bytes);
    return {
      procs: join(dir, "cgroup.procs"),
      resetPeak: () => {
        try {
          Deno.writeTextFileSync(join(dir, "memory.peak"), "0");
        } catch { /* older kernels cannot reset it */ }
      },
      peak: () => Number(Deno.readTextFileSync(join(dir, "memory.peak"))),
      remove: () => Deno.removeSync(dir),
    };
  } catch {
    return null;
  }
}

/** Runs `cmd` inside `group`: its wall time, exit code and stderr. */
export async function runInGroup(
  group: MemoryGroup,
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ seconds: number; code: number; stderr: string }> {
  const started = performance.now();
  const out = await new Deno.Command("sh", {
    args: ["-c", `echo $$ > ${group.procs} && exec "$@"`, "sh", ...cmd],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    seconds: (performance.now() - started) / 1000,
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
  };
}
