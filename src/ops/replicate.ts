/**
 * A local read replica kept up to date from a bucket: new verified segments are applied to a
 * private shadow copy, which is then published into the replica through SQLite's backup API.
 * Publishing through SQLite (rather than writing the file directly) takes the replica's
 * locks, so `sqlite3 replica.db` can read it at any moment and always sees a whole commit.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { backup, DatabaseSync } from "node:sqlite";
import { readHistory } from "../history/read.ts";
import { integrityCheck } from "../format/database.ts";
import { integrityError, usageError } from "../support/errors.ts";
import type { Logger } from "../support/log.ts";
import { applySegment, nodeKind, planRestore, restoreDatabase } from "./restore.ts";
import type { Storage } from "../storage/storage.ts";

/** Where the shadow copy stands. */
interface ShadowState {
  generation: string;
  txid: number;
  prevSha256: string;
  pageSize: number;
}

/** Options for {@link replicate}. */
export interface ReplicateOptions {
  /** Poll interval. */
  intervalMs: number;
  /** Stops the loop. */
  signal: AbortSignal;
  /** Events. */
  logger: Logger;
  /** Return after the first successful update instead of polling. */
  once?: boolean;
  /** Replace an existing `output` that no earlier `replicate` made. */
  force?: boolean;
}

/**
 * Refuses (usage error) an existing, non-empty `output` that is not a replica this command made
 * (which leaves its shadow copy beside it), unless `force`: the replica would overwrite it.
 */
async function checkReplicaOutput(output: string, shadow: string, force: boolean): Promise<void> {
  const found = await Deno.lstat(output).catch(() => null);
  if (found === null) return;
  if (!found.isFile && !found.isSymlink) {
    throw usageError(
      `output ${output} is not a regular file (${nodeKind(found)}); give a file path with -o`,
    );
  }
  // An empty file holds nothing to lose (`sqlite3 replica.db` run before the first update
  // creates one).
  const ours = found.size === 0 || await Deno.lstat(shadow).then(() => true, () => false);
  if (!ours && !force) {
    throw usageError(
      `output ${output} already exists and is not a replica walsync made (no ${
        basename(shadow)
      } beside it); choose another path with -o, or add --force to replace it`,
    );
  }
}

async function publish(shadow: string, output: string): Promise<void> {
  // A new replica is as private as a restored database (0600; SQLite would create it 0644).
  // An existing one keeps the mode its owner gave it. No connection of ours is open on it here.
  try {
    (await Deno.open(output, { write: true, createNew: true, mode: 0o600 })).close();
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const source = new DatabaseSync(shadow, { readOnly: false });
  try {
    await backup(source, output, { rate: -1 });
  } finally {
    source.close();
  }
}

/**
 * Keeps `output` a verified copy of the latest state of `db` in `storage`.
 * @example
 * ```ts
 * await replicate(storage, "app.db", "/srv/replica/app.db", {
 *   intervalMs: 10_000,
 *   signal: AbortSignal.timeout(60_000),
 *   logger: stderrLogger(false),
 * });
 * ```
 */
export async function replicate(
  storage: Storage,
  db: string,
  outputPath: string,
  options: ReplicateOptions,
): Promise<void> {
  const output = resolve(outputPath);
  const shadow = join(dirname(output), `.${basename(output)}.walsync-shadow`);
  await checkReplicaOutput(output, shadow, options.force ?? false);
  let state: ShadowState | null = null;
  const log = options.logger;

  async function update(): Promise<boolean> {
    const history = await readHistory(storage, db);
    const plan = planRestore(history.catalog);
    if (!state || state.generation !== plan.generation.id) {
      const result = await restoreDatabase(storage, db, { output: shadow, force: true });
      state = {
        generation: result.generation,
        txid: result.txid,
        prevSha256: result.segments.at(-1)?.sha256 ?? result.snapshot.sha256,
        pageSize: 0,
      };
      const head = await Deno.open(shadow, { read: true });
      try {
        const bytes = new Uint8Array(18);
        await head.read(bytes);
        const raw = (bytes[16] << 8) | bytes[17];
        state.pageSize = raw === 1 ? 65536 : raw;
      } finally {
        head.close();
      }
      await publish(shadow, output);
      log.log("INFO", "replica restored", { db, generation: state.generation, txid: state.txid });
      return true;
    }
    const current: ShadowState = state;
    const fresh = plan.segments.filter((s) => s.txid > current.txid);
    if (fresh.length === 0) return false;
    const file = await Deno.open(shadow, { read: true, write: true });
    try {
      for (const segment of fresh) {
        if (segment.txid !== current.txid + 1) {
          throw integrityError(
            segment.key,
            "gap in the WAL sequence",
            `txid ${current.txid + 1}`,
            `txid ${segment.txid}`,
          );
        }
        const applied = await applySegment(storage, file, segment, {
          db,
          generation: current.generation,
          pageSize: current.pageSize,
          prevSha256: current.prevSha256,
          signing: history.signing,
        });
        if (!applied) break;
        current.txid = applied.txid;
        current.prevSha256 = applied.sha256;
      }
      await file.sync();
    } catch (err) {
      state = null; // the shadow may be half-applied: rebuild it from the snapshot next time
      throw err;
    } finally {
      file.close();
    }
    const verdict = integrityCheck(shadow, "quick_check");
    if (verdict !== "ok") {
      state = null;
      throw integrityError(
        shadow,
        `replica shadow fails PRAGMA quick_check: ${verdict.slice(0, 200)}`,
      );
    }
    await publish(shadow, output);
    log.log("INFO", "replica updated", { db, txid: current.txid, segments: fresh.length });
    return true;
  }

  while (!options.signal.aborted) {
    try {
      await update();
      if (options.once) return;
    } catch (err) {
      if (options.once) throw err;
      log.log("ERROR", "replica update failed; will retry", {
        db,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, options.intervalMs);
      options.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
}
