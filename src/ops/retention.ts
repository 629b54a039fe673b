/**
 * Retention: delete whole generations that no point inside the restore window needs, and only
 * once the generation that takes over as the window's base has a snapshot that verifies.
 * @module
 */
import type { DatabaseCatalog, Generation } from "../history/catalog.ts";
import { readHistory } from "../history/read.ts";
import type { SigningKey } from "../history/sign.ts";
import { createHistoryWriter, type HistoryWriter } from "../history/writer.ts";
import { readObject } from "../storage/object.ts";
import type { Storage } from "../storage/storage.ts";

/** What retention would keep and delete. */
export interface RetentionPlan {
  /** The oldest generation kept: it restores the start of the window. */
  base?: Generation;
  /** Generations kept. */
  keep: Generation[];
  /** Generations to delete, every object of them. */
  remove: Generation[];
}

/**
 * Plans retention for a window of `windowMs` ending at `nowMs`. Points in the window are
 * restored by the generation that was current then: the newest one started at or before the
 * window's start (the base), and every later one. Older generations can go.
 */
export function planRetention(
  catalog: DatabaseCatalog,
  nowMs: number,
  windowMs: number,
): RetentionPlan {
  const generations = catalog.generations;
  if (windowMs <= 0 || generations.length < 2) return { keep: [...generations], remove: [] };
  const cutoff = nowMs - windowMs;
  const candidates = generations.filter((g) =>
    g.snapshots.length > 0 && g.started.getTime() <= cutoff
  );
  const base = candidates.at(-1);
  if (!base) return { keep: [...generations], remove: [] };
  const newest = generations.at(-1)!;
  const remove = generations.filter((g) => g.id < base.id && g !== newest);
  return { base, keep: generations.filter((g) => !remove.includes(g)), remove };
}

/** What a retention run did. */
export interface RetentionResult {
  /** Generations deleted. */
  generations: number;
  /** Objects deleted. */
  objects: number;
  /** Why nothing was deleted, when that is the case for a reason other than "nothing to do". */
  skipped?: string;
}

/**
 * Applies retention to one database in `storage`. In a format 3 bucket the head's `base`
 * moves first, by the lease holder: `writer` when watch runs it, else this call takes the
 * lease for the moment (and refuses, naming the holder, while a watch holds it). `signing` is
 * the key of a config file's `signing-key:` (the environment's `WALSYNC_SIGNING_KEY` otherwise).
 * @example
 * ```ts
 * const result = await applyRetention(storage, "app.db", 7 * 24 * 3_600_000);
 * console.log(result.generations, "generations deleted", result.skipped ?? "");
 * ```
 */
export async function applyRetention(
  storage: Storage,
  db: string,
  windowMs: number,
  nowMs: number = Date.now(),
  writer?: HistoryWriter,
  signing?: SigningKey,
): Promise<RetentionResult> {
  // Format 3: only what the head reaches is planned over; the holder's generation is never
  // a candidate, and objects nothing reaches go once they are older than the window.
  const history = await readHistory(storage, db, { signing });
  const live = writer?.currentGeneration() ?? history.head?.generation;
  const plan = planRetention(history.catalog, nowMs, windowMs);
  plan.remove = plan.remove.filter((g) => g.id !== live);
  const stale = history.unreached.filter((o) =>
    !o.key.includes(`/${live}/`) && (o.lastModified?.getTime() ?? nowMs) < nowMs - windowMs
  ).map((o) => o.key);
  if (plan.remove.length === 0 || !plan.base) {
    if (stale.length > 0) await storage.delete(stale);
    return { generations: 0, objects: stale.length };
  }
  // Nothing is deleted unless the generation that replaces them as the window's start is sound.
  const snapshot = plan.base.snapshots[0];
  try {
    const read = await readObject(storage, snapshot.key);
    for await (const _ of read.body) { /* hashed as it streams */ }
    read.finish();
  } catch (err) {
    return {
      generations: 0,
      objects: 0,
      skipped: `base snapshot ${snapshot.key} does not verify (${
        err instanceof Error ? err.message : err
      }); kept everything`,
    };
  }
  if (history.format === 3) {
    // The head's base moves first: an interrupted run leaves unreached objects, never a
    // history whose links lead to nothing.
    const holder = writer ?? createHistoryWriter(storage, db);
    try {
      await holder.acquire();
      await holder.setBase(plan.base.id);
    } finally {
      if (!writer) await holder.release();
    }
  }
  // Segments before snapshots: an interrupted run leaves a shorter, not a broken-looking, history.
  const keys = [
    ...plan.remove.flatMap((g) => [...g.segments, ...g.snapshots].map((o) => o.key)),
    ...stale,
  ];
  await storage.delete(keys);
  return { generations: plan.remove.length, objects: keys.length };
}
