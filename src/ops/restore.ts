/**
 * Restore: the newest snapshot at or before the target, then its WAL segments in order, into
 * a temporary file beside the output; every digest, the segment chain and
 * `PRAGMA integrity_check` must pass before the file is renamed into place.
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import {
  type CatalogObject,
  type DatabaseCatalog,
  type Generation,
  lastKnownTxid,
} from "../history/catalog.ts";
import { checkNotInUse, integrityCheck, parseDatabaseHeader } from "../format/database.ts";
import { syncDirectory, type WriteBehind, writeBehind } from "../support/durable.ts";
import { writeAllSync } from "../support/write_all.ts";
import { accessRefused, integrityError, usageError, WalsyncError } from "../support/errors.ts";
import { type History, readHistory } from "../history/read.ts";
import { checkObjectSignature, type SigningKey } from "../history/sign.ts";
import { meta } from "../format/layout.ts";
import { readAllVerified, readObject, type VerifiedRead } from "../storage/object.ts";
import { checkFreeSpace, diskFullError, isDiskFull } from "../storage/transfer/disk.ts";
import { downloadVerified } from "../storage/transfer/download.ts";
import {
  backoff,
  reportRetry,
  retriesSoFar,
  retryReason,
  transferAttempts,
} from "../storage/transfer/retry.ts";
import {
  decodeSegment,
  parseSegmentMetadata,
  type SegmentBody,
  segmentBodyOf,
  type SegmentMeta,
} from "../history/segment.ts";
import type { Storage } from "../storage/storage.ts";
import { createFrameApplier, WalFormatError } from "../format/wal.ts";

/** Which state to restore; the latest when both are absent. */
export interface RestoreTarget {
  /** Restore exactly the commits up to and including this txid. */
  txid?: number;
  /** Restore the commits shipped at or before this time. */
  timestamp?: Date;
}

/** Options for {@link restoreDatabase}. */
export interface RestoreOptions {
  /** Where to write the restored database. */
  output: string;
  /** Replace an existing output file. */
  force?: boolean;
  /** Point to restore to. */
  target?: RestoreTarget;
  /** Called with bytes downloaded so far and the expected total. */
  onBytes?: (done: number, total: number) => void;
  /** Checked between objects; when it returns true the restore stops and cleans up. */
  cancelled?: () => boolean;
  /** Signing key (a config's `signing-key:`); `WALSYNC_SIGNING_KEY` when absent. */
  signing?: SigningKey;
}

/** The objects a restore will read. */
export interface RestorePlan {
  /** Database name. */
  db: string;
  /** Generation the objects belong to. */
  generation: Generation;
  /** The snapshot to start from. */
  snapshot: CatalogObject;
  /** Segments to apply after it, in order. */
  segments: CatalogObject[];
  /** Stop after this txid (only with a txid target). */
  stopTxid?: number;
  /** Skip segments created after this time (only with a timestamp target). */
  stopTime?: Date;
  /** Bytes to download. */
  bytes: number;
  /** The anchored history it was planned over (format 3), for the checks along the way. */
  history?: Pick<History, "format" | "ends" | "signed" | "signatureChecked" | "signing">;
}

/** What a restore did. */
export interface RestoreResult {
  /** Database name. */
  db: string;
  /** Absolute path written. */
  output: string;
  /** Generation restored from. */
  generation: string;
  /** The snapshot it started from. */
  snapshot: { key: string; sha256: string; size: number; txid: number };
  /** Segments applied. */
  segments: { key: string; sha256: string }[];
  /** The last commit the restored database holds. */
  txid: number;
  /** Bytes downloaded and checked. */
  bytes: number;
  /** `PRAGMA integrity_check` verdict (always `ok` for a successful restore). */
  integrityCheck: string;
  /** Size of the restored file. */
  size: number;
  /** Downloads fetched again and connections resumed (each logged on stderr); always set by a restore. */
  retries?: number;
  /** 3 when restored from a history anchored by its head, 2 for an older bucket. */
  format?: 2 | 3;
  /** Whether the history is signed. */
  signed?: boolean;
  /** Whether signatures were checked (a signing key was set). */
  signatureChecked?: boolean;
}

function describeTarget(target: RestoreTarget): string {
  if (target.txid !== undefined) return `txid ${target.txid}`;
  if (target.timestamp) return target.timestamp.toISOString();
  return "the latest state";
}

/**
 * Chooses the snapshot and segments that reach the target.
 * @example
 * ```ts
 * const history = await readHistory(storage, "app.db");
 * const plan = planRestore(history.catalog, { txid: 1200 });
 * console.log(plan.snapshot.key, plan.segments.length, "segments", plan.bytes, "bytes");
 * ```
 */
export function planRestore(catalog: DatabaseCatalog, target: RestoreTarget = {}): RestorePlan {
  const usable = catalog.generations.filter((g) => g.snapshots.length > 0);
  if (usable.length === 0) {
    throw new WalsyncError(
      "failure",
      `no snapshot of ${catalog.db} found in this bucket; check the database name and --bucket (walsync list shows what is there)`,
    );
  }
  let generation: Generation | undefined;
  let snapshot: CatalogObject | undefined;
  if (target.txid !== undefined) {
    const txid = target.txid;
    // Newest generation that covers the txid wins: after a restart both may hold it.
    for (const g of [...usable].reverse()) {
      const s = g.snapshots.filter((snap) => snap.txid <= txid).at(-1);
      if (s && lastKnownTxid(g) >= txid) {
        generation = g;
        snapshot = s;
        break;
      }
    }
  } else if (target.timestamp) {
    const time = target.timestamp.getTime();
    for (const g of [...usable].reverse()) {
      if (g.started.getTime() > time) continue;
      generation = g;
      snapshot = g.snapshots.filter((snap) => (snap.lastModified?.getTime() ?? 0) <= time).at(-1) ??
        g.snapshots[0];
      break;
    }
  } else {
    generation = usable.reduce((best, g) =>
      lastKnownTxid(g) > lastKnownTxid(best) ||
        (lastKnownTxid(g) === lastKnownTxid(best) && g.id > best.id)
        ? g
        : best
    );
    snapshot = generation.snapshots.at(-1);
  }
  if (!generation || !snapshot) {
    const newest = Math.max(...usable.map(lastKnownTxid));
    throw new WalsyncError(
      "failure",
      `no backup of ${catalog.db} reaches ${describeTarget(target)} (txids ${
        usable[0].snapshots[0].txid
      } to ${newest} are stored); pick a point inside that range`,
    );
  }
  const stopTxid = target.txid;
  const segments: CatalogObject[] = [];
  let expected = snapshot.txid + 1;
  for (const segment of generation.segments) {
    if (segment.lastTxid <= snapshot.txid) continue;
    if (stopTxid !== undefined && segment.txid > stopTxid) break;
    if (segment.txid !== expected) {
      throw integrityError(
        segment.key,
        `gap in the WAL sequence: segment starts at txid ${segment.txid} after txid ${
          expected - 1
        }`,
        `txid ${expected}`,
        `txid ${segment.txid}`,
      );
    }
    segments.push(segment);
    expected = segment.lastTxid + 1;
  }
  const bytes = snapshot.size + segments.reduce((sum, s) => sum + s.size, 0);
  return {
    db: catalog.db,
    generation,
    snapshot,
    segments,
    stopTxid,
    stopTime: target.timestamp,
    bytes,
  };
}

/** The name of the temporary file a restore to `output` writes beside it. */
export function restoreTempName(output: string): string {
  return `.${basename(output)}.walsync-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/** Whether `name` (a file name in the output's directory) is a restore's temporary file for `output`. */
export function isRestoreTemp(name: string, output: string): boolean {
  const prefix = `.${basename(output)}.walsync-`;
  return name.startsWith(prefix) &&
    /^[0-9a-f]{8}\.tmp(-wal|-shm|-journal)?$/.test(name.slice(prefix.length));
}

/** Refuses to replace an existing database (or its WAL) without `force`. */
export async function checkOutput(output: string, force: boolean): Promise<void> {
  for (const path of [output, `${output}-wal`, `${output}-journal`]) {
    try {
      const stat = await Deno.lstat(path);
      if (path === output && stat.isDirectory) {
        throw usageError(`output ${output} is a directory; give a file path with -o`);
      }
      if (path === output && !stat.isFile && !stat.isSymlink) {
        // Even with --force: the rename would put the database where a device or FIFO was.
        throw usageError(
          `output ${output} is not a regular file (${nodeKind(stat)}); give a file path with -o`,
        );
      }
      if (!force) {
        throw usageError(
          `output ${path} already exists; choose another path with -o, or add --force to replace it`,
        );
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
  }
  try {
    const dir = await Deno.stat(dirname(output));
    if (!dir.isDirectory) throw new Error();
  } catch {
    throw usageError(`directory ${dirname(output)} does not exist; create it or change -o`);
  }
  if (force) await refuseLiveOutput(output);
}

/** What a file-system node that is not a regular file is, in words ("a FIFO"). */
export function nodeKind(stat: Deno.FileInfo): string {
  if (stat.isFifo) return "a FIFO";
  if (stat.isCharDevice) return "a character device";
  if (stat.isBlockDevice) return "a block device";
  if (stat.isSocket) return "a socket";
  if (stat.isDirectory) return "a directory";
  return "not a file";
}

/**
 * Refuses (exit 4) to replace a database another process has open: checked before the
 * download and again just before the rename, since an application may start meanwhile.
 */
async function refuseLiveOutput(output: string): Promise<void> {
  const stat = await Deno.stat(output).catch(() => null);
  if (stat?.isFile) checkNotInUse(output);
}

/**
 * Restores a database from `storage` into `options.output`.
 * @example
 * ```ts
 * const storage = await openBucket("s3://backups/prod");
 * const result = await restoreDatabase(storage, "app.db", {
 *   output: "/tmp/app.db",
 *   target: { timestamp: new Date("2026-11-30T09:00:00Z") },
 * });
 * console.log(result.txid, result.integrityCheck); // e.g. 1187 "ok"
 * ```
 */
export async function restoreDatabase(
  storage: Storage,
  db: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const output = resolve(options.output);
  await checkOutput(output, options.force ?? false);
  const history = await readHistory(storage, db, { signing: options.signing });
  const plan = { ...planRestore(history.catalog, options.target), history };
  return await applyPlan(storage, plan, output, options);
}

/** One restore under way: the temporary file it writes and the bytes checked so far. */
interface RestoreRun {
  storage: Storage;
  plan: RestorePlan;
  /** The temporary file beside the output, open for writing. */
  file: Deno.FsFile;
  /** Flushes the snapshot's bytes to the disk while later ones download. */
  behind: WriteBehind;
  /** Bytes of the objects downloaded and checked so far. */
  done: number;
  /** Reports `done` plus the bytes of the object in flight to the caller's `onBytes`. */
  report(objectBytes: number): void;
  /** Throws when the caller has cancelled (checked between objects and writes). */
  cancelled(): void;
}

/** Downloads, checks and applies a plan into `output` (which `checkOutput` has cleared). */
export async function applyPlan(
  storage: Storage,
  plan: RestorePlan,
  output: string,
  options: Pick<RestoreOptions, "force" | "onBytes" | "cancelled"> = {},
): Promise<RestoreResult> {
  const temp = join(dirname(output), restoreTempName(output));
  const retriesBefore = retriesSoFar();
  await checkFreeSpace(dirname(output), plan.bytes, "restore");
  const file = await openTemp(temp);
  const run: RestoreRun = {
    storage,
    plan,
    file,
    behind: writeBehind(file),
    done: 0,
    report: (objectBytes) => options.onBytes?.(run.done + objectBytes, plan.bytes),
    cancelled: () => {
      if (options.cancelled?.()) {
        throw new WalsyncError("failure", "restore cancelled; nothing was written");
      }
    },
  };
  let open = true;
  try {
    const snapshot = await writeSnapshot(run);
    const { applied, reached } = await writeSegments(run, snapshot);
    const verdict = await syncAndCheck(run, temp);
    file.close();
    open = false;
    if (verdict !== "ok") {
      throw integrityError(
        plan.snapshot.key,
        `restored database fails PRAGMA integrity_check: ${verdict.slice(0, 200)}`,
      );
    }
    const size = (await Deno.stat(temp)).size;
    run.cancelled(); // last chance: after the rename the file is the operator's
    await moveIntoPlace(temp, output, options.force ?? false);
    return {
      db: plan.db,
      output,
      generation: plan.generation.id,
      snapshot: {
        key: plan.snapshot.key,
        sha256: snapshot.sha256,
        size: snapshot.size,
        txid: plan.snapshot.txid,
      },
      segments: applied,
      txid: reached,
      bytes: run.done,
      integrityCheck: verdict,
      size,
      retries: retriesSoFar() - retriesBefore,
      format: plan.history?.format ?? 2,
      signed: plan.history?.signed ?? false,
      signatureChecked: plan.history?.signatureChecked ?? false,
    };
  } catch (err) {
    if (open) {
      try {
        file.close();
      } catch { /* closed */ }
    }
    for (const path of [temp, `${temp}-wal`, `${temp}-shm`, `${temp}-journal`]) {
      await Deno.remove(path).catch(() => {});
    }
    if (isDiskFull(err)) throw await diskFullError(dirname(output), plan.bytes, "restore");
    throw err;
  }
}

/** The snapshot as written and checked: its digest, size and page size. */
interface WrittenSnapshot {
  sha256: string;
  size: number;
  pageSize: number;
}

/**
 * Writes the plan's snapshot into the file: ranges in parallel, written in order in 1 MiB
 * slices of 64 KiB calls (`writeAllSync`), hashed as they are written; the digest is checked at
 * the end and a damaged transfer fetched again. Then its header, page size, generation and
 * place in the history are checked.
 */
async function writeSnapshot(run: RestoreRun): Promise<WrittenSnapshot> {
  const { storage, plan, file } = run;
  const head = new Uint8Array(100);
  let headFilled = 0;
  const snap = await downloadVerified(storage, plan.snapshot.key, {
    write: (chunk) =>
      Promise.try(() => {
        if (headFilled < 100) {
          const take = Math.min(100 - headFilled, chunk.byteLength);
          head.set(chunk.subarray(0, take), headFilled);
          headFilled += take;
        }
        writeAllSync(file, chunk);
        run.behind.wrote(chunk.byteLength);
        run.cancelled();
      }),
    async reset() {
      headFilled = 0;
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
    },
  }, { onBytes: run.report });
  const header = parseDatabaseHeader(head.subarray(0, headFilled));
  if (!header) throw integrityError(plan.snapshot.key, "snapshot is not a SQLite database");
  const promisedPageSize = snap.info.metadata[meta.pageSize];
  if (promisedPageSize !== undefined && Number(promisedPageSize) !== header.pageSize) {
    throw integrityError(
      plan.snapshot.key,
      "page size differs from metadata",
      promisedPageSize,
      String(header.pageSize),
    );
  }
  checkBelongs(plan.snapshot.key, snap.info.metadata, plan, "snapshot");
  checkAnchored(plan, plan.snapshot.key, snap.info.metadata, snap.sha256);
  run.done += snap.size;
  run.cancelled();
  return { sha256: snap.sha256, size: snap.size, pageSize: header.pageSize };
}

/**
 * Applies the plan's segments after the snapshot, checking each digest, its own checksum
 * chain and the link to the object before it; stops at the plan's target. The segments
 * applied and the txid reached.
 */
async function writeSegments(
  run: RestoreRun,
  snapshot: WrittenSnapshot,
): Promise<{ applied: { key: string; sha256: string }[]; reached: number }> {
  const { storage, plan } = run;
  let prevSha256 = snapshot.sha256;
  let reached = plan.snapshot.txid;
  const applied: { key: string; sha256: string }[] = [];
  for (const [index, segment] of plan.segments.entries()) {
    // The first segment after a later snapshot links to a segment not downloaded; its
    // claimed digest is checked against that segment's metadata instead.
    const expectedPrev = index === 0 && plan.snapshot.txid !== plan.generation.snapshots[0].txid
      ? await previousDigest(storage, plan, segment)
      : prevSha256;
    const result = await applySegment(storage, run.file, segment, {
      db: plan.db,
      generation: plan.generation.id,
      pageSize: snapshot.pageSize,
      prevSha256: expectedPrev,
      stopTxid: plan.stopTxid,
      stopTime: plan.stopTime,
      onBytes: run.report,
      signing: plan.history?.signing,
    });
    if (result === null) break;
    checkAnchored(plan, segment.key, undefined, result.sha256);
    run.done += result.size;
    prevSha256 = result.sha256;
    reached = result.txid;
    applied.push({ key: segment.key, sha256: result.sha256 });
    run.cancelled();
  }
  return { applied, reached };
}

/**
 * Fsyncs the temporary file and runs `PRAGMA integrity_check` on it; the verdict.
 *
 * The fsync waits on the disk and integrity_check on the CPU, so they run side by side: the
 * fsync on a blocking thread, the check here. Most of the snapshot's bytes are on the disk
 * already (write-behind), so the fsync is short. The check reads the same bytes the fsync
 * persists, from the page cache, and the rename waits for both. The descriptor stays open
 * until SQLite's connection has closed (fact 1: closing it first would drop SQLite's locks).
 */
async function syncAndCheck(run: RestoreRun, temp: string): Promise<string> {
  const { file, behind } = run;
  const synced = behind.settle().then(() => file.sync());
  const warmed = warmPageCache(temp);
  // One turn of the event loop hands both to their threads before the check blocks this one.
  await new Promise((resolve) => setTimeout(resolve, 0));
  let verdict: string;
  try {
    verdict = integrityCheck(temp, "integrity_check");
  } finally {
    await synced.catch(() => {}); // its failure is thrown below, once it has settled
    await warmed;
  }
  await synced;
  return verdict;
}

/**
 * Creates the restore's temporary file (mode 0600) beside the output; a directory this process
 * may not write in (or a read-only file system) is a usage error naming it, not an internal one.
 */
async function openTemp(temp: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(temp, { write: true, read: true, createNew: true, mode: 0o600 });
  } catch (err) {
    const reason = accessRefused(err);
    if (reason === null) throw err;
    throw usageError(
      `cannot create files in ${
        dirname(temp)
      } (${reason}); run walsync as a user who may write there, or choose another directory with -o`,
    );
  }
}

/** Renames the checked temporary file over `output` and makes the rename durable. */
async function moveIntoPlace(temp: string, output: string, force: boolean): Promise<void> {
  if (force) {
    await refuseLiveOutput(output);
    // A stale WAL beside the old file would be replayed onto the restored one.
    for (const stale of [`${output}-wal`, `${output}-shm`, `${output}-journal`]) {
      await Deno.remove(stale).catch(() => {});
    }
  }
  await Deno.rename(temp, output);
  await syncDirectory(dirname(output));
}

/**
 * Reads `path` into the page cache in the kernel (sendfile to /dev/null: no user-space copy,
 * no RSS) while `integrity_check` reads it page by page. On a machine whose page cache is full,
 * the restored file's first pages are evicted before the check comes back to them, and SQLite's
 * 4 KiB reads of a cold file are bound by the disk's IOPS: 783 MiB took 11.9 s cold against 2.5 s
 * with this running beside it, and no difference when warm (docs/benchmarks.md). Linux only
 * (elsewhere `copyFile` may copy metadata onto the target). Failures are ignored: it is a hint.
 * Its descriptor closing during the check would drop SQLite's lock on the file (fact 1); harmless
 * here, as no other process opens the private temporary file, and the check only reads.
 */
function warmPageCache(path: string): Promise<void> {
  if (Deno.build.os !== "linux") return Promise.resolve();
  return Deno.copyFile(path, "/dev/null").catch(() => {});
}

/** What a segment must be to continue the file it is applied to. */
export interface SegmentExpectation {
  /** Database name. */
  db: string;
  /** Generation id. */
  generation: string;
  /** Page size of the file. */
  pageSize: number;
  /** Digest of the object it must follow. */
  prevSha256: string;
  /** Apply no commit past this txid. */
  stopTxid?: number;
  /** Skip the segment when it was created after this time. */
  stopTime?: Date;
  /** Bytes read so far of this object. */
  onBytes?: (n: number) => void;
  /** When set, the segment's signature must match under this key. */
  signing?: SigningKey;
}

/**
 * Downloads one segment and applies it to `file`, checking its digest, its metadata against
 * its key and the expectation, its WAL checksum chain and its link to the previous object.
 * A raw segment streams into `file` as it downloads; a compressed one is held in memory until
 * its SHA256 matched, then decoded (bounded by its declared size) and applied. Returns null
 * (and applies nothing) when the segment is past `stopTime`. A failure may leave `file`
 * partly written: apply only to a scratch file.
 */
export async function applySegment(
  storage: Storage,
  file: Deno.FsFile,
  segment: CatalogObject,
  expect: SegmentExpectation,
): Promise<{ sha256: string; size: number; txid: number } | null> {
  let lastProblem: string | undefined;
  for (let attempt = 1;; attempt++) {
    try {
      return await applySegmentOnce(storage, file, segment, expect);
    } catch (err) {
      if (!(err instanceof SegmentBodyFailure)) throw err;
      // Applying again from the start is safe: frames are whole pages at fixed offsets, and
      // no frame is written before its checksum chain held. The same failure twice is the
      // stored object, not the wire.
      if (attempt >= transferAttempts || err.inner.message === lastProblem) throw err.inner;
      lastProblem = err.inner.message;
      reportRetry({
        op: "download",
        key: segment.key,
        attempt: attempt + 1,
        of: transferAttempts,
        reason: retryReason(err.inner),
      });
      await backoff(attempt + 1);
    }
  }
}

/** A segment whose body failed (digest, size, frames, decoding, dropped connection): worth another try. */
class SegmentBodyFailure extends Error {
  constructor(readonly inner: Error) {
    super(inner.message);
  }
}

async function applySegmentOnce(
  storage: Storage,
  file: Deno.FsFile,
  segment: CatalogObject,
  expect: SegmentExpectation,
): Promise<{ sha256: string; size: number; txid: number } | null> {
  const read = await readObject(storage, segment.key, expect.onBytes);
  let info: SegmentMeta;
  let body: SegmentBody;
  try {
    info = parseSegmentMetadata(segment.key, read.info.metadata);
    checkSegmentBelongs(segment, read.info.metadata, info, expect);
    if (expect.signing) checkObjectSignature(segment.key, read.info.metadata, expect.signing);
    if (expect.stopTime && new Date(info.created).getTime() > expect.stopTime.getTime()) {
      await read.body.cancel();
      return null;
    }
    if (info.prevSha256 !== expect.prevSha256) {
      throw integrityError(
        segment.key,
        "segment does not follow the object before it (prev-sha256)",
        expect.prevSha256,
        info.prevSha256,
      );
    }
    body = segmentBodyOf(segment.key, read.info.metadata, info);
  } catch (err) {
    await read.body.cancel().catch(() => {});
    throw err;
  }
  const stopAfter = expect.stopTxid !== undefined && expect.stopTxid < info.txidLast
    ? expect.stopTxid - info.txidFirst + 1
    : undefined;
  const applier = createFrameApplier(file, info, stopAfter);
  // Only a body not (yet) proven equal to its metadata's SHA256 may have been damaged on the
  // way; a failure after the digest matched is the stored object itself, never retried.
  let verified = false;
  try {
    let digest: { sha256: string; size: number };
    if (body.encoding === "identity") {
      const frameError = await applyStreaming(read, applier);
      if (frameError) {
        try {
          read.finish();
          verified = true;
        } catch { /* the bytes differ from their digest: perhaps damaged in transit */ }
        throw frameError;
      }
      digest = read.finish();
    } else {
      // Nothing is decoded, let alone written, before the stored bytes' SHA256 matched.
      const stored = await readAllVerified(read);
      digest = stored;
      verified = true;
      await applier.write(decodeSegment(segment.key, stored.bytes, body));
    }
    verified = true;
    await applier.finish();
    return {
      sha256: digest.sha256,
      size: digest.size,
      txid: stopAfter === undefined ? info.txidLast : info.txidFirst + stopAfter - 1,
    };
  } catch (err) {
    // Damaged frames stop the applier before the digest can be checked at the end.
    const problem = err instanceof WalFormatError
      ? integrityError(segment.key, `WAL frames fail their checks: ${err.message}`)
      : err;
    if (
      !verified && problem instanceof WalsyncError &&
      (problem.kind === "integrity" || problem.kind === "storage")
    ) {
      throw new SegmentBodyFailure(problem);
    }
    throw problem;
  }
}

/**
 * Streams a raw segment into the applier; once a frame fails its checks nothing more is
 * applied, but the body is still read to its end so that its digest can tell damage in
 * transit from a damaged object. Returns that frame error, if any.
 */
async function applyStreaming(
  read: VerifiedRead,
  applier: ReturnType<typeof createFrameApplier>,
): Promise<WalFormatError | undefined> {
  let frameError: WalFormatError | undefined;
  for await (const chunk of read.body) {
    if (frameError) continue;
    try {
      await applier.write(chunk);
    } catch (err) {
      if (!(err instanceof WalFormatError)) throw err;
      frameError = err;
    }
  }
  return frameError;
}

/** Throws unless a segment's metadata matches its key, its database and generation, and the page size. */
function checkSegmentBelongs(
  segment: CatalogObject,
  metadata: Record<string, string>,
  info: SegmentMeta,
  expect: SegmentExpectation,
): void {
  for (
    const [name, actual, expected] of [
      [meta.kind, metadata[meta.kind], "wal"],
      [meta.db, metadata[meta.db], expect.db],
      [meta.generation, metadata[meta.generation], expect.generation],
    ] as const
  ) {
    if (actual !== expected) {
      throw integrityError(
        segment.key,
        `metadata belongs to another object (${name})`,
        expected,
        actual ?? "(missing)",
      );
    }
  }
  if (info.txidFirst !== segment.txid || info.txidLast !== segment.lastTxid) {
    throw integrityError(
      segment.key,
      "txids in metadata differ from the key",
      `${segment.txid}-${segment.lastTxid}`,
      `${info.txidFirst}-${info.txidLast}`,
    );
  }
  if (info.pageSize !== expect.pageSize) {
    throw integrityError(
      segment.key,
      "page size differs from the snapshot",
      String(expect.pageSize),
      String(info.pageSize),
    );
  }
}

function checkBelongs(
  key: string,
  metadata: Record<string, string>,
  plan: RestorePlan,
  kind: string,
): void {
  const checks: [string, string | undefined, string][] = [
    [meta.kind, metadata[meta.kind], kind],
    [meta.db, metadata[meta.db], plan.db],
    [meta.generation, metadata[meta.generation], plan.generation.id],
  ];
  for (const [name, actual, expected] of checks) {
    if (actual !== expected) {
      throw integrityError(
        key,
        `metadata belongs to another object (${name})`,
        expected,
        actual ?? "(missing)",
      );
    }
  }
}

/**
 * Checks against the anchored history: the snapshot's `walsync-txid` against its key, its
 * signature when a key is set, and the digest of each generation's last object against what
 * the head (or the next generation's link) promises for it.
 */
function checkAnchored(
  plan: RestorePlan,
  key: string,
  snapshotMetadata: Record<string, string> | undefined,
  sha256: string,
): void {
  if (snapshotMetadata) {
    const txid = snapshotMetadata[meta.txid];
    if (txid !== undefined && Number(txid) !== plan.snapshot.txid) {
      throw integrityError(
        key,
        "txid in metadata differs from the key",
        String(plan.snapshot.txid),
        txid ?? "(missing)",
      );
    }
    if (plan.history?.signing) checkObjectSignature(key, snapshotMetadata, plan.history.signing);
  }
  const promised = plan.history?.ends.get(key);
  if (promised !== undefined && promised !== sha256) {
    throw integrityError(
      key,
      "object differs from the one the history's head (or link) names (substituted)",
      promised,
      sha256,
    );
  }
}

async function previousDigest(
  storage: Storage,
  plan: RestorePlan,
  segment: CatalogObject,
): Promise<string> {
  const before = plan.generation.segments.filter((s) => s.lastTxid < segment.txid).at(-1);
  const key = before?.key ?? plan.generation.snapshots[0].key;
  const info = await storage.head(key);
  const digest = info?.metadata[meta.sha256];
  if (!digest) throw integrityError(key, "sha256 metadata is missing");
  return digest;
}
