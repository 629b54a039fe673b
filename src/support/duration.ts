/**
 * Durations as the command line and config files write them (`500ms`, `1s`, `10m`, `24h`,
 * `7d`). Kept apart from `config.ts` so that commands which never read a config file do not
 * load the YAML parser.
 * @module
 */

/**
 * Parses a duration such as `1s`, `500ms`, `10m`, `24h`, `7d` (bare numbers are seconds).
 * @example
 * ```ts
 * durationMs("10m"); // 600000
 * durationMs("1.5"); // null: not a duration
 * ```
 */
export function durationMs(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "s"]!;
  return Math.round(Number(m[1]) * unit);
}

/** A duration in the largest unit that divides it: `1s`, `24h`, `500ms`; `off` for 0. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "off";
  for (
    const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const
  ) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
