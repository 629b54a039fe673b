/**
 * The writing side of a history (format 3), for `watch` and `snapshot`: take the lease,
 * allocate txids from the head, link each new generation to where the history ended, and
 * move the head after every shipped batch with a conditional write.
 *
 * @example
 * ```ts
 * const history = createHistoryWriter(storage, "app.db", { logger });
 * await history.acquire();
 * const start = await history.startGeneration(generation);
 * // upload the snapshot at start.txid with start.metadata, then:
 * await history.advance({ txid: start.txid, key, sha256 });
 * await history.release();
 * ```
 * @module
 */
import { type CatalogObject, checkTxidRange, lastKnownTxid, readCatalog } from "./catalog.ts";
import { integrityError, WalsyncError } from "../support/errors.ts";
import { generationPrefix, headKey, maxTxid, meta, parseKey } from "../format/layout.ts";
import type { Logger } from "../support/log.ts";
import type { Metadata, Storage } from "../storage/storage.ts";
import { encodeHead, type Head, readHead } from "./head.ts";
import {
  acquireLease,
  currentHolder,
  type HeldLease,
  LeaseLostError,
  leaseMsFromEnv,
  probeConditionalWrites,
  releaseLease,
  renewLease,
} from "./lease.ts";
import { type SigningKey, signingKeyFrom, signObject } from "./sign.ts";
import { isFormat3 } from "./read.ts";

/** Options for {@link createHistoryWriter}. */
export interface HistoryWriterOptions {
  /** Where the WARN line about a provider without conditional writes goes. */
  logger?: Logger;
  /** Take the lease even when another process holds it. */
  takeover?: boolean;
  /** Lease time; `WALSYNC_LEASE_SECONDS` or 300 s by default. */
  leaseMs?: number;
  /** Signing key; `WALSYNC_SIGNING_KEY` by default. */
  signing?: SigningKey;
  /** Clock (tests). */
  now?: () => number;
}

/** The last object of a shipped batch. */
export interface Shipped {
  /** Its last txid. */
  txid: number;
  /** Its key. */
  key: string;
  /** Its SHA256. */
  sha256: string;
}

/** Where a new generation starts: its txid, and the link metadata its snapshot carries. */
export interface GenerationStart {
  /** Txid of the new generation's snapshot. */
  txid: number;
  /** `walsync-prev-key` and `walsync-prev-sha256` for the snapshot. */
  metadata: Metadata;
}

/** The writing side of one database's history in one destination. */
export interface HistoryWriter {
  /** Takes the lease (once; later calls do nothing while it is held). */
  acquire(): Promise<void>;
  /** Allocates the txid of a new generation's snapshot (at least `atLeast`) and its link. */
  startGeneration(atLeast?: number): Promise<GenerationStart>;
  /** Moves the head to the last object of a shipped batch (conditional write). */
  advance(shipped: Shipped): Promise<void>;
  /** Renews the lease when a third of its time has passed. */
  renewIfDue(): Promise<void>;
  /** Moves the head's `base` (retention, before it deletes older generations). */
  setBase(generation: string): Promise<void>;
  /** Signs an object's metadata (which must hold `sha256`) when a key is set. */
  sign(key: string, metadata: Metadata): Metadata;
  /** Whether a signing key is set. */
  readonly signed: boolean;
  /** The generation the holder is writing, if any (retention never deletes it). */
  currentGeneration(): string | undefined;
  /** Why this writer may never write again: its lease was taken over; undefined while it may. */
  lostLease(): LeaseLostError | undefined;
  /** Gives the lease back. */
  release(): Promise<void>;
}

/** What one writer keeps: the lease it holds and the head as it last read or wrote it. */
interface WriterState {
  readonly storage: Storage;
  readonly db: string;
  readonly options: HistoryWriterOptions;
  readonly now: () => number;
  readonly leaseMs: number;
  readonly signing: SigningKey | undefined;
  /** The lease, while held. */
  held: HeldLease | null;
  /** When the lease was last taken or renewed. */
  renewedAt: number;
  /** The head as last read or written (null: none yet). */
  head: Head | null;
  /** Its etag, for the next conditional write (null: create it). */
  headEtag: string | null;
  /** Whether `head` is current (false after the lease is lost or given back). */
  headLoaded: boolean;
  /** Set once the lease is lost: every later write refuses with it. */
  lost: LeaseLostError | null;
}

/** Throws when the lease was lost (this process must never write the history again). */
function checkNotLost(w: WriterState): void {
  if (w.lost) throw w.lost;
}

/** Reads the head and its etag. */
async function loadHead(w: WriterState): Promise<void> {
  const stored = await readHead(w.storage, w.db);
  w.head = stored?.head ?? null;
  w.headEtag = stored?.etag ?? null;
  w.headLoaded = true;
}

/** Moves the head with a conditional write; losing the race means losing the lease. */
async function writeHead(w: WriterState, next: Omit<Head, "signature">): Promise<void> {
  const { storage, db } = w;
  const bytes = encodeHead(next, w.signing);
  const written = w.headEtag === null
    ? await storage.createIfAbsent(headKey(db), bytes)
    : await storage.replaceIfMatch(headKey(db), bytes, w.headEtag);
  if (!written.written) {
    // Someone else moved the head: whatever our lease says, we are no longer the writer.
    w.headLoaded = false;
    w.held = null;
    w.lost = new LeaseLostError(db, await currentHolder(storage, db));
    throw w.lost;
  }
  w.headEtag = written.etag;
  w.head = { ...next };
}

/** The link of a first format 3 generation in a bucket that holds only format 1/2 objects. */
async function legacyEnd(
  w: WriterState,
): Promise<{ txid: number; key: string; sha256: string } | null> {
  const { storage, db } = w;
  const catalog = await readCatalog(storage, db);
  checkTxidRange(catalog);
  // The lease is ours by now: only snapshots written as format 3 tell of a lost head.
  if (await isFormat3(storage, catalog, { lease: false })) {
    // A format 3 history whose head is gone: never link to objects nothing vouches for.
    w.options.logger?.log("WARN", "head missing; starting a new history", { db });
    const txid = Math.max(-1, ...catalog.generations.map(lastKnownTxid));
    return { txid, key: "", sha256: "" };
  }
  const newest = catalog.generations.filter((g) => g.snapshots.length > 0).reduce<
    { g: (typeof catalog.generations)[number]; last: CatalogObject } | null
  >((best, g) => {
    const last = [...g.snapshots, ...g.segments].sort((a, b) => a.lastTxid - b.lastTxid).at(-1)!;
    return !best || last.lastTxid > best.last.lastTxid ? { g, last } : best;
  }, null);
  if (!newest) return null;
  const info = await storage.head(newest.last.key);
  const sha256 = info?.metadata[meta.sha256];
  if (!sha256) throw integrityError(newest.last.key, "sha256 metadata is missing");
  return { txid: newest.last.lastTxid, key: newest.last.key, sha256 };
}

/** {@link HistoryWriter.acquire}. */
async function acquire(w: WriterState): Promise<void> {
  checkNotLost(w);
  if (w.held) return;
  const { storage, db, now } = w;
  w.held = await acquireLease(storage, db, {
    leaseMs: w.leaseMs,
    takeover: w.options.takeover,
    now,
  });
  w.renewedAt = now();
  const probe = await probeConditionalWrites(storage, w.held);
  w.held = probe.held;
  if (!probe.honoured) {
    w.options.logger?.log(
      "WARN",
      `${storage.location} ignores conditional writes (If-None-Match); the lease cannot keep a second writer out`,
      { db },
    );
  }
  await loadHead(w);
}

/** {@link HistoryWriter.startGeneration}, once the lease is held. */
async function allocateGeneration(w: WriterState, atLeast: number): Promise<GenerationStart> {
  const { storage, db } = w;
  if (!w.headLoaded) await loadHead(w);
  const head = w.head;
  const end = head ? { txid: head.txid, key: head.key, sha256: head.sha256 } : await legacyEnd(w);
  // Above the head, and above any segment a killed writer left past it in the head's
  // generation (never acknowledged, never restored): a txid names one state only.
  let floor = end?.txid ?? -1;
  if (head) {
    for await (const info of storage.list(generationPrefix(db, head.generation))) {
      floor = Math.max(floor, parseKey(info.key)?.lastTxid ?? -1);
    }
  }
  const txid = Math.max(floor + 1, atLeast);
  if (txid > maxTxid) throw integrityError(headKey(db), "txids are exhausted");
  return {
    txid,
    metadata: { [meta.prevKey]: end?.key ?? "", [meta.prevSha256]: end?.sha256 ?? "" },
  };
}

/** {@link HistoryWriter.advance}. */
async function advance(w: WriterState, shipped: Shipped): Promise<void> {
  checkNotLost(w);
  if (!w.held) throw new WalsyncError("failure", `the lease of ${w.db} is not held`);
  const parsed = parseKey(shipped.key);
  if (!parsed) throw new Error(`not a layout key: ${shipped.key}`);
  const current = w.head;
  await writeHead(w, {
    db: w.db,
    generation: parsed.generation,
    txid: shipped.txid,
    key: shipped.key,
    sha256: shipped.sha256,
    ...(current?.base ? { base: current.base } : {}),
    updated: new Date(w.now()).toISOString(),
  });
}

/** {@link HistoryWriter.renewIfDue}. */
async function renewIfDue(w: WriterState): Promise<void> {
  if (!w.held || w.now() - w.renewedAt < w.leaseMs / 3) return;
  try {
    w.held = await renewLease(w.storage, w.held, w.leaseMs, w.now);
    w.renewedAt = w.now();
  } catch (err) {
    if (err instanceof LeaseLostError) {
      w.held = null;
      w.headLoaded = false;
      w.lost = err;
    }
    throw err;
  }
}

/** {@link HistoryWriter.setBase}. */
async function setBase(w: WriterState, generation: string): Promise<void> {
  checkNotLost(w);
  if (!w.held) throw new WalsyncError("failure", `the lease of ${w.db} is not held`);
  if (!w.headLoaded) await loadHead(w);
  const current = w.head;
  if (!current) return;
  const { signature: _, ...rest } = current;
  await writeHead(w, { ...rest, base: generation, updated: new Date(w.now()).toISOString() });
}

/** Creates the history writer of `db` in `storage`. */
export function createHistoryWriter(
  storage: Storage,
  db: string,
  options: HistoryWriterOptions = {},
): HistoryWriter {
  const signing = options.signing ?? signingKeyFrom();
  const w: WriterState = {
    storage,
    db,
    options,
    now: options.now ?? Date.now,
    leaseMs: options.leaseMs ?? leaseMsFromEnv(),
    signing,
    held: null,
    renewedAt: 0,
    head: null,
    headEtag: null,
    headLoaded: false,
    lost: null,
  };
  const writer: HistoryWriter = {
    signed: signing !== undefined,
    acquire: () => acquire(w),
    async startGeneration(atLeast = 0) {
      await writer.acquire();
      return await allocateGeneration(w, atLeast);
    },
    advance: (shipped) => advance(w, shipped),
    renewIfDue: () => renewIfDue(w),
    setBase: (generation) => setBase(w, generation),
    sign(key, metadata) {
      return signObject(key, metadata, signing);
    },
    lostLease() {
      return w.lost ?? undefined;
    },
    currentGeneration() {
      return w.head?.generation;
    },
    async release() {
      if (w.held) await releaseLease(storage, w.held);
      w.held = null;
      w.headLoaded = false;
    },
  };
  return writer;
}
