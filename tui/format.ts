/**
 * How the wizard writes times, digests, durations and counts: short, unambiguous, always UTC
 * (an operator comparing against server logs at 3 a.m. should not have to convert zones).
 * @module
 */

/** `2026-11-24 10:15:02 UTC`, or the input unchanged when it is not a time. */
export function formatTime(value: string | Date | undefined): string {
  if (value === undefined || value === "") return "unknown time";
  const date = value instanceof Date ? value : new Date(value);
  if (isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `20261124T101500Z`: a UTC time that is safe in a file name and sorts by age. */
export function compactUtc(date: Date): string {
  return date.toISOString().slice(0, 19).replace(/[-:]/g, "") + "Z";
}

/** The first `length` hex digits of a digest and an ellipsis, or `-` when there is none. */
export function shortDigest(hex: string | undefined, length = 12): string {
  if (!hex || !/^[0-9a-f]+$/.test(hex)) return hex ?? "-";
  return hex.length > length ? `${hex.slice(0, length)}…` : hex;
}

/** `45s`, `3m 05s`, `1h 02m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** `1,234,567`. */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** Cuts `text` to `width` characters, marking the cut with `…`. */
export function truncate(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}
