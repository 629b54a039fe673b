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
import { hashFile } from "../support/hash.ts";
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
  /** Signs the metadata of a file about to be uploaded (hashing it only when a key is set). */
  signFile(key: string, path: string, metadata: Metadata): Promise<Metadata>;
  /** Whether a signing key is set. */
  readonly signed: boolean;
  /** The generation the holder is writing, if any (retention never deletes it). */
  currentGeneration(): string | undefined;
  /** Why this writer may never write again: its lease was taken over; undefined while it may. */
  lostLease(): LeaseLostError | undefined;
  /** Gives the lease back. */
  release(): Promise<void>;
}

/** Creates the history writer of `db` in `storage`. */
export function createHistoryWriter(
  storage: Storage,
  db: string,
  options: HistoryWriterOptions = {},
): HistoryWriter {
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? leaseMsFromEnv();
  const signing = options.signing ?? signingKeyFrom();
  let held: HeldLease | null = null;
  let renewedAt = 0;
  let head: Head | null = null;
  let headEtag: string | null = null;
  let headLoaded = false;
  /** Set once the lease is lost: every later write refuses with it. */
  let lost: LeaseLostError | null = null;

  /** Throws when the lease was lost (this process must never write the history again). */
  function checkNotLost(): void {
    if (lost) throw lost;
  }

  async function loadHead(): Promise<void> {
    const stored = await readHead(storage, db);
    head = stored?.head ?? null;
    headEtag = stored?.etag ?? null;
    headLoaded = true;
  }

  async function writeHead(next: Omit<Head, "signature">): Promise<void> {
    const bytes = encodeHead(next, signing);
    const written = headEtag === null
      ? await storage.createIfAbsent(headKey(db), bytes)
      : await storage.replaceIfMatch(headKey(db), bytes, headEtag);
    if (!written.written) {
      // Someone else moved the head: whatever our lease says, we are no longer the writer.
      headLoaded = false;
      held = null;
      lost = new LeaseLostError(db, await currentHolder(storage, db));
      throw lost;
    }
    headEtag = written.etag;
    head = { ...next };
  }

  /** The link of a first format 3 generation in a bucket that holds only format 1/2 objects. */
  async function legacyEnd(): Promise<{ txid: number; key: string; sha256: string } | null> {
    const catalog = await readCatalog(storage, db);
    checkTxidRange(catalog);
    // The lease is ours by now: only snapshots written as format 3 tell of a lost head.
    if (await isFormat3(storage, catalog, { lease: false })) {
      // A format 3 history whose head is gone: never link to objects nothing vouches for.
      options.logger?.log("WARN", "head missing; starting a new history", { db });
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

  const writer: HistoryWriter = {
    signed: signing !== undefined,

    async acquire() {
      checkNotLost();
      if (held) return;
      held = await acquireLease(storage, db, { leaseMs, takeover: options.takeover, now });
      renewedAt = now();
      const probe = await probeConditionalWrites(storage, held);
      held = probe.held;
      if (!probe.honoured) {
        options.logger?.log(
          "WARN",
          `${storage.location} ignores conditional writes (If-None-Match); the lease cannot keep a second writer out`,
          { db },
        );
      }
      await loadHead();
    },

    async startGeneration(atLeast = 0) {
      await writer.acquire();
      if (!headLoaded) await loadHead();
      const end = head
        ? { txid: head.txid, key: head.key, sha256: head.sha256 }
        : await legacyEnd();
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
    },

    async advance(shipped) {
      checkNotLost();
      if (!held) throw new WalsyncError("failure", `the lease of ${db} is not held`);
      const parsed = parseKey(shipped.key);
      if (!parsed) throw new Error(`not a layout key: ${shipped.key}`);
      const current = head as Head | null;
      await writeHead({
        db,
        generation: parsed.generation,
        txid: shipped.txid,
        key: shipped.key,
        sha256: shipped.sha256,
        ...(current?.base ? { base: current.base } : {}),
        updated: new Date(now()).toISOString(),
      });
    },

    async renewIfDue() {
      if (!held || now() - renewedAt < leaseMs / 3) return;
      try {
        held = await renewLease(storage, held, leaseMs, now);
        renewedAt = now();
      } catch (err) {
        if (err instanceof LeaseLostError) {
          held = null;
          headLoaded = false;
          lost = err;
        }
        throw err;
      }
    },

    async setBase(generation) {
      checkNotLost();
      if (!held) throw new WalsyncError("failure", `the lease of ${db} is not held`);
      if (!headLoaded) await loadHead();
      const current = head as Head | null;
      if (!current) return;
      const { signature: _, ...rest } = current;
      await writeHead({ ...rest, base: generation, updated: new Date(now()).toISOString() });
    },

    sign(key, metadata) {
      return signObject(key, metadata, signing);
    },

    async signFile(key, path, metadata) {
      if (!signing) return metadata;
      const { sha256 } = await hashFile(path);
      return signObject(key, { ...metadata, [meta.sha256]: sha256 }, signing);
    },

    lostLease() {
      return lost ?? undefined;
    },

    currentGeneration() {
      return (head as Head | null)?.generation;
    },

    async release() {
      if (held) await releaseLease(storage, held);
      held = null;
      headLoaded = false;
    },
  };
  return writer;
}
