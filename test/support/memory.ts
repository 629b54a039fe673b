/**
 * The peak memory of a subprocess: its high-water RSS (`VmHWM` in `/proc/<pid>/status`), which
 * the kernel keeps for the process's life, read every 2 ms until it exits. The last reading
 * is the peak unless the peak came within the last 2 ms of its life.
 * @module
 */

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
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      peakKib = Math.max(peakKib, Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0));
    } catch {
      // gone, or no /proc
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  const out = await output;
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    peakRssBytes: peakKib * 1024,
  };
}
