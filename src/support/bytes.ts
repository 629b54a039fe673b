/**
 * Comparing byte arrays.
 * @module
 */

/**
 * Whether two byte arrays hold the same bytes.
 *
 * @example
 * ```ts
 * if (!sameBytes(before.bytes, after.bytes)) console.log("the header moved");
 * ```
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
