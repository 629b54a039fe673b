/**
 * Restore drills: an untested backup is a hope. A drill restores the latest state into a
 * temporary directory with every check a real restore makes (digests, chain,
 * `PRAGMA integrity_check`), then deletes it.
 * @module
 */
import { join } from "node:path";
import { WalsyncError } from "../support/errors.ts";
import { restoreDatabase } from "./restore.ts";
import type { SigningKey } from "../history/sign.ts";
import type { Storage } from "../storage/storage.ts";

/** The outcome of one drill. */
export interface DrillResult {
  /** Database name. */
  db: string;
  /** Whether the restore and every check passed. */
  ok: boolean;
  /** The txid the drill restored. */
  txid?: number;
  /** Objects checked. */
  objects?: number;
  /** Bytes downloaded and checked. */
  bytes?: number;
  /** How long it took. */
  durationMs: number;
  /** What failed. */
  error?: string;
  /** `integrity` when a checksum or chain failed; other kinds otherwise. */
  kind?: string;
  /** When it ran (ISO 8601). */
  at: string;
}

/**
 * Runs one drill for `db` in `storage`.
 * @example
 * ```ts
 * const drill = await runDrill(storage, "app.db");
 * if (!drill.ok) console.error("restore drill failed for", drill.db);
 * ```
 */
export async function runDrill(
  storage: Storage,
  db: string,
  signing?: SigningKey,
): Promise<DrillResult> {
  const at = new Date().toISOString();
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "walsync-drill-" });
  try {
    const result = await restoreDatabase(storage, db, { output: join(dir, db), signing });
    return {
      db,
      ok: true,
      txid: result.txid,
      objects: 1 + result.segments.length,
      bytes: result.bytes,
      durationMs: Math.round(performance.now() - started),
      at,
    };
  } catch (err) {
    return {
      db,
      ok: false,
      durationMs: Math.round(performance.now() - started),
      error: err instanceof Error ? err.message : String(err),
      kind: err instanceof WalsyncError ? err.kind : "failure",
      at,
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
