/**
 * A process's memory as `/proc/<pid>/status` tells it, and the peak memory of a subprocess: its
 * high-water RSS (`VmHWM`), which the kernel keeps for the process's life, read every 2 ms until
 * it exits. The last reading is the peak unless the peak came within the last 2 ms of its life.
 * The benchmarks read the same figures (`bench/common.ts` re-exports {@link procMemory}).
 * @module
 */

/** VmRSS, VmHWM and RssAnon of a process in KiB (0 when it is gone). */
export function procMemory(pid: number): { rssKib: number; hwmKib: number; anonKib: number } {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return {
      rssKib: Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0),
      hwmKib: Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0),
      anonKib: Number(status.match(/^RssAnon:\s+(\d+) kB/m)?.[1] ?? 0),
    };
  } catch {
    return { rssKib: 0, hwmKib: 0, anonKib: 0 };
  }
}

/** Exit code, stderr and the highest `VmHWM` read, in bytes (0 without `/proc`). */
export interface PeakRssResult {
  code: number;
  stderr: string;
  peakRssBytes: number;
}

/**
 * Runs `cmd` to completion, reading its peak RSS as it runs.
 * @example
 * const r = await peakRssOf(["sleep", "1"]);
 * console.log(r.peakRssBytes);
 */
export async function peakRssOf(
  cmd: string[],
  env: Record<string, string> = {},
): Promise<PeakRssResult> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let peakKib = 0;
  let running = true;
  const output = child.output().finally(() => running = false);
  while (running) {
    peakKib = Math.max(peakKib, procMemory(child.pid).hwmKib);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const out = await output;
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    peakRssBytes: peakKib * 1024,
  };
}
