/**
 * Where a restore goes unless the operator says otherwise: a new, time-stamped file in the
 * current directory, so accepting the default can never replace anything.
 * @module
 */
import { compactUtc } from "./format.ts";

/** `./app-restored-20261124T101500Z.db` for database `app.db` restored at that UTC time. */
export function defaultOutputPath(db: string, now: Date): string {
  const stem = db.replace(/\.(db|db3|sqlite|sqlite3)$/i, "") || db;
  // Characters a shell or another OS would trip over become `_`; db names are plain file names.
  const safe = stem.replace(/[^A-Za-z0-9._+@-]/g, "_");
  return `./${safe}-restored-${compactUtc(now)}.db`;
}

/** Expands a leading `~/` the way the operator's shell would have (they are used to typing it). */
export function expandHome(path: string, home: string | undefined): string {
  const trimmed = path.trim();
  if (home && (trimmed === "~" || trimmed.startsWith("~/"))) return home + trimmed.slice(1);
  return trimmed;
}
