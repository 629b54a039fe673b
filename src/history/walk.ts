/**
 * Walking a history back from its head (`docs/format.md`, "How a reader walks the history"):
 * which listed objects belong to the history, and which problems on the path are integrity
 * errors. Pure except for `linkOf`, which reads a snapshot's link metadata.
 * @module
 */
import type { CatalogObject, DatabaseCatalog, Generation } from "./catalog.ts";
import { integrityError } from "../support/errors.ts";
import { parseKey } from "../format/layout.ts";
import type { Head } from "./head.ts";

/** What a snapshot's metadata says about the history before it. */
export interface SnapshotLink {
  /** `walsync-format` of the snapshot (1 or 2: no links, segments may be followed by more snapshots). */
  format: number;
  /** Key of the last object before this generation; empty when the history starts here. */
  prevKey: string;
  /** That object's digest. */
  prevSha256: string;
}

/** The history as reached from its head. */
export interface AnchoredHistory {
  /** The reached objects only, shaped like a catalog (so restore plans over it unchanged). */
  catalog: DatabaseCatalog;
  /** Listed objects the head does not reach, oldest generation first. */
  unreached: CatalogObject[];
  /** The last object of each reached generation, with the digest the history promises for it. */
  ends: { key: string; sha256: string }[];
}

interface Walked {
  generation: Generation;
  end: { key: string; sha256: string };
  link: SnapshotLink | null;
}

/** Walks one generation back from `endKey` to its snapshot; throws on a gap or an extra object. */
function walkGeneration(
  g: Generation,
  endKey: string,
  strict: boolean,
  unreached: CatalogObject[],
): Generation {
  const all = [...g.snapshots, ...g.segments];
  const end = all.find((o) => o.key === endKey);
  if (!end) throw integrityError(endKey, "object is missing (the history ends with it)");
  const path: CatalogObject[] = [end];
  let current = end;
  while (g.segments.includes(current)) {
    const before = current.txid - 1;
    const segments = g.segments.filter((s) => s.lastTxid === before);
    const candidates = segments.length > 0
      ? segments
      : g.snapshots.filter((s) => s.txid === before);
    if (candidates.length === 0) {
      throw integrityError(
        current.key,
        `missing object before it: nothing in generation ${g.id} ends at txid ${before}`,
      );
    }
    if (candidates.length > 1) {
      throw integrityError(candidates[1].key, "extra object on the history path (same txids)");
    }
    current = candidates[0];
    path.unshift(current);
  }
  const snapshot = current;
  const snapshots = [snapshot];
  for (const o of all) {
    if (path.includes(o)) continue;
    if (o.txid > end.lastTxid) {
      unreached.push(o);
    } else if (!strict && g.snapshots.includes(o) && o.txid > snapshot.txid) {
      snapshots.push(o); // format 1/2: a later snapshot inside a generation was allowed
    } else {
      throw integrityError(o.key, "extra object on the history path (not linked into it)");
    }
  }
  snapshots.sort((a, b) => a.txid - b.txid);
  return { id: g.id, started: g.started, snapshots, segments: path.slice(1) };
}

/**
 * Walks the history back from `head` over a listing. Throws an integrity error for the first
 * missing, extra or out-of-order object on the path, and for a head that was rolled back
 * (an unreached object at or after the head's generation, past its txid, written before it).
 */
export async function anchorCatalog(
  catalog: DatabaseCatalog,
  head: Head,
  headWritten: Date | undefined,
  linkOf: (snapshot: CatalogObject) => Promise<SnapshotLink | null>,
): Promise<AnchoredHistory> {
  const unreached: CatalogObject[] = [];
  const walked: Walked[] = [];
  let generationId = head.generation;
  let endKey = head.key;
  let endSha256 = head.sha256;
  let above = Infinity; // the txid the next (newer) generation's snapshot holds
  for (;;) {
    const g = catalog.generations.find((x) => x.id === generationId);
    if (!g) throw integrityError(endKey, "object is missing (the history links to it)");
    const first = [...g.snapshots].sort((a, b) => a.txid - b.txid)[0];
    const link = first ? await linkOf(first) : null;
    const generation = walkGeneration(g, endKey, (link?.format ?? 3) >= 3, unreached);
    const last = generation.segments.at(-1) ?? generation.snapshots[0];
    if (above !== Infinity && last.lastTxid >= above) {
      throw integrityError(
        last.key,
        "history out of order: the next generation does not start above this object",
        `txids below ${above}`,
        `txid ${last.lastTxid}`,
      );
    }
    walked.push({ generation, end: { key: endKey, sha256: endSha256 }, link });
    if (head.base === g.id || !link || link.prevKey === "") break;
    const prev = parseKey(link.prevKey);
    if (!prev || prev.db !== catalog.db) {
      throw integrityError(generation.snapshots[0].key, "link to the history before is malformed");
    }
    above = generation.snapshots[0].txid;
    generationId = prev.generation;
    endKey = link.prevKey;
    endSha256 = link.prevSha256;
  }
  const reachedIds = new Set(walked.map((w) => w.generation.id));
  for (const g of catalog.generations) {
    if (!reachedIds.has(g.id)) unreached.push(...g.snapshots, ...g.segments);
  }
  const headTime = headWritten?.getTime();
  for (const o of unreached) {
    const generation = parseKey(o.key)!.generation;
    if (
      headTime !== undefined && generation >= head.generation && o.lastTxid > head.txid &&
      o.lastModified !== undefined && o.lastModified.getTime() < headTime
    ) {
      throw integrityError(
        o.key,
        `head was rolled back: this object holds txids past the head's ${head.txid} but was written before the head`,
      );
    }
  }
  unreached.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    catalog: {
      db: catalog.db,
      generations: walked.map((w) => w.generation).reverse(),
      unknown: catalog.unknown,
      outOfRange: catalog.outOfRange,
    },
    unreached,
    ends: walked.map((w) => w.end).reverse(),
  };
}
