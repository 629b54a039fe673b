/**
 * Verify: read every object of a database's backup and check it without restoring —
 * digest, size, header sanity, the links between objects — and report every bad object,
 * not just the first.
 * @module
 */
import {
  type CatalogObject,
  type DatabaseCatalog,
  type Generation,
  readCatalog,
} from "../history/catalog.ts";
import { parseDatabaseHeader } from "../format/database.ts";
import { WalsyncError } from "../support/errors.ts";
import { readHistory } from "../history/read.ts";
import { checkObjectSignature, type SigningKey } from "../history/sign.ts";
import { meta } from "../format/layout.ts";
import { decodeSegment, parseSegmentMetadata, segmentBodyOf } from "../history/segment.ts";
import type { Storage } from "../storage/storage.ts";
import { downloadVerified } from "../storage/transfer/download.ts";
import { retriesSoFar } from "../storage/transfer/retry.ts";
import { verifySegment, WalFormatError } from "../format/wal.ts";

/** One object that failed. */
export interface VerifyFailure {
  /** Storage key. */
  key: string;
  /** What is wrong, in words. */
  problem: string;
  /** What was expected, when it applies. */
  expected?: string;
  /** What was found, when it applies. */
  actual?: string;
}

/** The verdict on one database. */
export interface VerifyReport {
  /** Database name. */
  db: string;
  /** Objects read. */
  objects: number;
  /** Bytes read and hashed. */
  bytes: number;
  /** Generations seen. */
  generations: number;
  /** Every failure; empty when all is well. */
  failures: VerifyFailure[];
  /** Digest of each object read, by key. */
  digests: Record<string, string>;
  /** 3 when the history is anchored by a head, 2 for an older bucket. */
  format: 2 | 3;
  /** Objects the head does not reach: not part of the history, never restored. */
  unreached: string[];
  /** Whether the history is signed. */
  signed: boolean;
  /** Whether signatures were checked (a signing key is set). */
  signatureChecked: boolean;
  /** Objects fetched again after damage in transit (each also logged). */
  retries: number;
}

/** Options for {@link verifyDatabase}. */
export interface VerifyOptions {
  /** Called with bytes read so far and the expected total. */
  onBytes?: (done: number, total: number) => void;
  /** Signing key (a config's `signing-key:`); `WALSYNC_SIGNING_KEY` when absent. */
  signing?: SigningKey;
}

function failureOf(key: string, err: unknown): VerifyFailure {
  if (err instanceof WalsyncError && err.kind === "integrity") {
    const problem = err.message.startsWith(`${key}: `)
      ? err.message.slice(key.length + 2).replace(/, expected .*$/, "")
      : err.message;
    return { key, problem, expected: err.detail?.expected, actual: err.detail?.actual };
  }
  if (err instanceof WalFormatError) return { key, problem: err.message };
  throw err;
}

/**
 * Reads one object completely and checks its digest and size; returns digest and the first
 * 100 bytes (and every byte when `keepAll`). A body damaged on the way is fetched again,
 * bounded, as a restore does; damage that comes back identical is the stored object's.
 */
async function checkObject(
  storage: Storage,
  key: string,
  onBytes: (n: number) => void,
  keepAll: boolean,
): Promise<
  {
    sha256: string;
    size: number;
    head: Uint8Array;
    bytes?: Uint8Array;
    metadata: Record<string, string>;
  }
> {
  const head = new Uint8Array(100);
  let filled = 0;
  let chunks: Uint8Array[] = [];
  const got = await downloadVerified(storage, key, {
    write(chunk) {
      if (filled < 100) {
        const take = Math.min(100 - filled, chunk.byteLength);
        head.set(chunk.subarray(0, take), filled);
        filled += take;
      }
      // The downloader reuses its buffers: keep a copy.
      if (keepAll) chunks.push(chunk.slice());
      return Promise.resolve();
    },
    reset() {
      filled = 0;
      chunks = [];
      return Promise.resolve();
    },
  }, { onBytes });
  let bytes: Uint8Array | undefined;
  if (keepAll) {
    bytes = new Uint8Array(got.size);
    let offset = 0;
    for (const c of chunks) {
      bytes.set(c, offset);
      offset += c.byteLength;
    }
  }
  return {
    sha256: got.sha256,
    size: got.size,
    head: head.subarray(0, filled),
    bytes,
    metadata: got.info.metadata,
  };
}

/**
 * Verifies every object of one database's backup.
 * @example
 * ```ts
 * const report = await verifyDatabase(storage, "app.db");
 * for (const f of report.failures) console.error(f.key, f.problem);
 * if (report.failures.length > 0) Deno.exit(5);
 * ```
 */
export async function verifyDatabase(
  storage: Storage,
  db: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const listed: DatabaseCatalog = await readCatalog(storage, db);
  const report: VerifyReport = {
    db,
    objects: 0,
    bytes: 0,
    generations: listed.generations.length,
    failures: [],
    digests: {},
    format: 2,
    unreached: [],
    signed: false,
    signatureChecked: false,
    retries: 0,
  };
  const retriesBefore = retriesSoFar();
  const { catalog, history } = await walkHistory(storage, listed, options, report);
  const signing = history?.signing;
  const signatureFailure = (key: string, metadata: Record<string, string>) => {
    if (!signing) return;
    try {
      checkObjectSignature(key, metadata, signing);
    } catch (err) {
      report.failures.push(failureOf(key, err));
    }
  };
  if (catalog.generations.length === 0) {
    throw noBackup(db);
  }
  for (const key of catalog.unknown) {
    const problem = catalog.outOfRange?.includes(key)
      ? "txid in the key is beyond 2^53 - 1 (not written by Walsync)"
      : "object name is not part of the Walsync layout";
    report.failures.push({ key, problem });
  }
  const total = catalog.generations.reduce(
    (sum, g) => sum + [...g.snapshots, ...g.segments].reduce((s, o) => s + o.size, 0),
    0,
  );
  const progressOf = (n: number) => options.onBytes?.(report.bytes + n, total);
  for (const generation of catalog.generations) {
    await checkGeneration({ storage, report, progressOf, signatureFailure }, generation);
  }
  checkEnds(history, report);
  report.retries = retriesSoFar() - retriesBefore;
  return report;
}

type History = Awaited<ReturnType<typeof readHistory>>;

/**
 * The history as its head reaches it; when it cannot be walked, that is the first failure
 * and every listed object is still checked on its own.
 */
async function walkHistory(
  storage: Storage,
  listed: DatabaseCatalog,
  options: VerifyOptions,
  report: VerifyReport,
): Promise<{ catalog: DatabaseCatalog; history: History | undefined }> {
  const db = report.db;
  try {
    const history = await readHistory(storage, db, { catalog: listed, signing: options.signing });
    report.format = history.format;
    report.unreached = history.unreached.map((o) => o.key);
    report.signed = history.signed;
    report.signatureChecked = history.signatureChecked;
    return { catalog: history.catalog, history };
  } catch (err) {
    if (listed.generations.length === 0) throw noBackup(db);
    report.failures.push(failureOf(
      err instanceof WalsyncError && err.detail?.key ? err.detail.key : `${db}/head`,
      err,
    ));
    report.format = 3;
    return { catalog: listed, history: undefined };
  }
}

/** What checking the objects of one generation works with. */
interface GenerationCheck {
  storage: Storage;
  /** Where objects read and failures go. */
  report: VerifyReport;
  /** Progress of the object being read (bytes of it so far). */
  progressOf: (n: number) => void;
  /** Records a failure when the object's signature does not hold (and a key is set). */
  signatureFailure: (key: string, metadata: Record<string, string>) => void;
  /** Whether an object's metadata names this database, generation and kind (else a failure). */
  belongs: (key: string, metadata: Record<string, string>, kind: string) => boolean;
}

/** Checks the snapshots of one generation, then its segments as a chain from the first. */
async function checkGeneration(
  parts: Omit<GenerationCheck, "belongs">,
  generation: Generation,
): Promise<void> {
  const { report } = parts;
  const db = report.db;
  const belongs = (key: string, metadata: Record<string, string>, kind: string) => {
    for (
      const [name, expected] of [[meta.kind, kind], [meta.db, db], [
        meta.generation,
        generation.id,
      ]]
    ) {
      if (metadata[name] !== expected) {
        report.failures.push({
          key,
          problem: `metadata belongs to another object (${name})`,
          expected,
          actual: metadata[name] ?? "(missing)",
        });
        return false;
      }
    }
    return true;
  };
  const check = { ...parts, belongs };
  if (generation.snapshots.length === 0) {
    report.failures.push({
      key: `${db}/generations/${generation.id}/`,
      problem: "generation has WAL segments but no snapshot",
    });
  }
  const digestByLastTxid = new Map<number, string>();
  for (const snapshot of generation.snapshots) {
    const sha256 = await checkSnapshot(check, snapshot);
    if (sha256 !== undefined) digestByLastTxid.set(snapshot.txid, sha256);
  }
  await checkSegments(check, generation, digestByLastTxid);
}

/** Checks one snapshot; returns its digest once it has been read whole. */
async function checkSnapshot(
  check: GenerationCheck,
  snapshot: CatalogObject,
): Promise<string | undefined> {
  const { report } = check;
  let sha256: string | undefined;
  try {
    const got = await checkObject(check.storage, snapshot.key, check.progressOf, false);
    report.objects++;
    report.bytes += got.size;
    report.digests[snapshot.key] = got.sha256;
    sha256 = got.sha256;
    if (!check.belongs(snapshot.key, got.metadata, "snapshot")) return sha256;
    check.signatureFailure(snapshot.key, got.metadata);
    const header = parseDatabaseHeader(got.head);
    if (!header) {
      report.failures.push({
        key: snapshot.key,
        problem: "snapshot is not a SQLite database (bad header)",
      });
      return sha256;
    }
    const pageSize = got.metadata[meta.pageSize];
    if (pageSize !== undefined && Number(pageSize) !== header.pageSize) {
      report.failures.push({
        key: snapshot.key,
        problem: "page size differs from metadata",
        expected: pageSize,
        actual: String(header.pageSize),
      });
    } else if (got.size % header.pageSize !== 0) {
      report.failures.push({
        key: snapshot.key,
        problem: "snapshot size is not a whole number of pages",
      });
    }
    const txid = got.metadata[meta.txid];
    if (txid !== undefined && Number(txid) !== snapshot.txid) {
      report.failures.push({
        key: snapshot.key,
        problem: "txid in metadata differs from the key",
        expected: String(snapshot.txid),
        actual: txid,
      });
    }
  } catch (err) {
    report.failures.push(failureOf(snapshot.key, err));
  }
  return sha256;
}

/** Segments: each on its own, then as a chain from the generation's first snapshot. */
async function checkSegments(
  check: GenerationCheck,
  generation: Generation,
  digestByLastTxid: Map<number, string>,
): Promise<void> {
  const { report } = check;
  let expectedTxid = (generation.snapshots[0]?.txid ?? -1) + 1;
  let prevDigest = generation.snapshots[0]
    ? digestByLastTxid.get(generation.snapshots[0].txid)
    : undefined;
  for (const segment of generation.segments) {
    if (segment.lastTxid < expectedTxid) continue;
    if (segment.txid !== expectedTxid) {
      report.failures.push({
        key: segment.key,
        problem: `gap in the WAL sequence: segment starts at txid ${segment.txid} after txid ${
          expectedTxid - 1
        }`,
        expected: `txid ${expectedTxid}`,
        actual: `txid ${segment.txid}`,
      });
    }
    expectedTxid = segment.lastTxid + 1;
    try {
      const sha256 = await checkSegment(check, segment, prevDigest);
      prevDigest = sha256;
    } catch (err) {
      report.failures.push(failureOf(segment.key, err));
      prevDigest = undefined;
    }
  }
}

/** Checks one segment and its link to `prevDigest`; returns its digest. */
async function checkSegment(
  check: GenerationCheck,
  segment: CatalogObject,
  prevDigest: string | undefined,
): Promise<string> {
  const { report } = check;
  const got = await checkObject(check.storage, segment.key, check.progressOf, true);
  report.objects++;
  report.bytes += got.size;
  report.digests[segment.key] = got.sha256;
  const info = parseSegmentMetadata(segment.key, got.metadata);
  check.belongs(segment.key, got.metadata, "wal");
  check.signatureFailure(segment.key, got.metadata);
  if (info.txidFirst !== segment.txid || info.txidLast !== segment.lastTxid) {
    report.failures.push({
      key: segment.key,
      problem: "txids in metadata differ from the key",
      expected: `${segment.txid}-${segment.lastTxid}`,
      actual: `${info.txidFirst}-${info.txidLast}`,
    });
  }
  // SHA256 of the stored bytes first (checkObject), then the zstd content checksum and
  // declared size (decodeSegment), then the WAL's own salts and checksum chain.
  const body = segmentBodyOf(segment.key, got.metadata, info);
  verifySegment(decodeSegment(segment.key, got.bytes!, body), info);
  if (prevDigest !== undefined && info.prevSha256 !== prevDigest) {
    report.failures.push({
      key: segment.key,
      problem: "segment does not follow the object before it (prev-sha256)",
      expected: prevDigest,
      actual: info.prevSha256,
    });
  }
  return got.sha256;
}

/** Each generation's last object must be the one the head (or the next link) names. */
function checkEnds(history: History | undefined, report: VerifyReport): void {
  for (const [key, promised] of history?.ends ?? []) {
    const digest = report.digests[key];
    if (digest !== undefined && digest !== promised) {
      report.failures.push({
        key,
        problem: "object differs from the one the history's head (or link) names (substituted)",
        expected: promised,
        actual: digest,
      });
    }
  }
}

function noBackup(db: string): WalsyncError {
  return new WalsyncError(
    "failure",
    `no backup of ${db} found in this bucket; check the database name and --bucket (walsync list shows what is there)`,
  );
}
