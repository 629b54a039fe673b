/**
 * The pure parts of an anchored history (issue 11): walking a listing back from its head, the
 * lease with a fake clock, retention planned over what the head reaches, the probe for a
 * provider that ignores conditional writes, and key and name bounds.
 * @module
 */
import assert from "node:assert/strict";
import type { CatalogObject, DatabaseCatalog } from "../../src/history/catalog.ts";
import { WalsyncError } from "../../src/support/errors.ts";
import type { Head } from "../../src/history/head.ts";
import { acquireLease, renewLease } from "../../src/history/lease.ts";
import { anchorCatalog, type SnapshotLink } from "../../src/history/walk.ts";
import { createHistoryWriter } from "../../src/history/writer.ts";
import {
  generationTime,
  isValidDbName,
  parseKey,
  snapshotKey,
  txidHex,
  walSegmentKey,
} from "../../src/format/layout.ts";
import type { Logger, LogLevel } from "../../src/support/log.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { fileStorage } from "../../src/storage/file.ts";

const db = "app.db";
const g1 = "20260101T000000000Z-00000001";
const g2 = "20260102T000000000Z-00000002";
const digest = (n: number) => n.toString(16).padStart(64, "0");

function object(key: string, modified = 0): CatalogObject {
  const p = parseKey(key)!;
  return { key, txid: p.txid, lastTxid: p.lastTxid, size: 1, lastModified: new Date(modified) };
}

/** g1: snapshot 0, segments 1-2, 3-3; g2: snapshot 4, segment 5-6. */
function catalogOf(extra: CatalogObject[] = [], drop: string[] = []): DatabaseCatalog {
  const all = [
    object(snapshotKey(db, g1, 0)),
    object(walSegmentKey(db, g1, 1, 2)),
    object(walSegmentKey(db, g1, 3, 3)),
    object(snapshotKey(db, g2, 4)),
    object(walSegmentKey(db, g2, 5, 6)),
    ...extra,
  ].filter((o) => !drop.includes(o.key));
  const generations = [g1, g2].map((id) => ({
    id,
    started: generationTime(id),
    snapshots: all.filter((o) => o.key.includes(id) && o.key.endsWith(".db")),
    segments: all.filter((o) => o.key.includes(id) && o.key.endsWith(".wal"))
      .sort((a, b) => a.txid - b.txid),
  })).filter((g) => g.snapshots.length + g.segments.length > 0);
  return { db, generations, unknown: [] };
}

const head: Head = {
  db,
  generation: g2,
  txid: 6,
  key: walSegmentKey(db, g2, 5, 6),
  sha256: digest(6),
  updated: "",
};

const links = (s: CatalogObject): Promise<SnapshotLink | null> =>
  Promise.resolve(
    s.key.includes(g2)
      ? { format: 3, prevKey: walSegmentKey(db, g1, 3, 3), prevSha256: digest(3) }
      : { format: 3, prevKey: "", prevSha256: "" },
  );

async function integrity(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof WalsyncError && err.kind === "integrity", String(err));
    assert.match(err.message, pattern);
    return err.message;
  }
  assert.fail("expected an integrity error");
}

Deno.test("walk: the head reaches both generations through the link; the ends are promised", async () => {
  const h = await anchorCatalog(catalogOf(), head, new Date(10), links);
  assert.deepEqual(h.catalog.generations.map((g) => g.id), [g1, g2]);
  assert.deepEqual(h.unreached, []);
  assert.deepEqual(h.ends, [
    { key: walSegmentKey(db, g1, 3, 3), sha256: digest(3) },
    { key: head.key, sha256: digest(6) },
  ]);
});

Deno.test("walk: the head's object missing (tail deleted) names it", async () => {
  await integrity(
    anchorCatalog(catalogOf([], [head.key]), head, undefined, links),
    new RegExp(`${head.key}: object is missing`),
  );
});

Deno.test("walk: a gap in the middle names the object after it", async () => {
  await integrity(
    anchorCatalog(catalogOf([], [walSegmentKey(db, g1, 1, 2)]), head, undefined, links),
    /0000000000000003-0000000000000003\.wal: missing object before it/,
  );
});

Deno.test("walk: an extra object inside a walked range is an error", async () => {
  const extra = object(walSegmentKey(db, g1, 2, 2));
  await integrity(
    anchorCatalog(catalogOf([extra]), head, undefined, links),
    /extra object on the history path/,
  );
});

Deno.test("walk: a planted newer generation and a late segment are unreached, never errors", async () => {
  const planted = object(snapshotKey(db, "29990101T000000000Z-deadbeef", 100), 20);
  const late = object(walSegmentKey(db, g1, 4, 9), 20);
  const catalog = catalogOf([late]);
  catalog.generations.push({
    id: "29990101T000000000Z-deadbeef",
    started: new Date(0),
    snapshots: [planted],
    segments: [],
  });
  const h = await anchorCatalog(catalog, head, new Date(10), links);
  assert.deepEqual(h.unreached.map((o) => o.key).sort(), [late.key, planted.key].sort());
});

Deno.test("walk: an object past the head written before it means the head was rolled back", async () => {
  const older: Head = { ...head, txid: 4, key: snapshotKey(db, g2, 4), sha256: digest(4) };
  await integrity(
    anchorCatalog(catalogOf(), older, new Date(10), links),
    /head was rolled back/,
  );
  // Written after the head (an upload whose head write did not happen yet): not an error.
  const h = await anchorCatalog(catalogOf(), older, new Date(-1), links);
  assert.deepEqual(h.unreached.map((o) => o.key), [walSegmentKey(db, g2, 5, 6)]);
});

Deno.test("walk: a link to a missing generation is an error, unless retention's base stops before it", async () => {
  const drop = [snapshotKey(db, g1, 0), walSegmentKey(db, g1, 1, 2), walSegmentKey(db, g1, 3, 3)];
  await integrity(anchorCatalog(catalogOf([], drop), head, undefined, links), /missing/);
  const h = await anchorCatalog(catalogOf([], drop), { ...head, base: g2 }, undefined, links);
  assert.deepEqual(h.catalog.generations.map((g) => g.id), [g2]);
});

Deno.test("walk: a generation that does not start above the one before is out of order", async () => {
  const beyond = object(walSegmentKey(db, g1, 4, 5));
  const wrong = (s: CatalogObject): Promise<SnapshotLink | null> =>
    Promise.resolve(
      s.key.includes(g2)
        ? { format: 3, prevKey: beyond.key, prevSha256: digest(5) }
        : { format: 3, prevKey: "", prevSha256: "" },
    );
  await integrity(anchorCatalog(catalogOf([beyond]), head, undefined, wrong), /out of order/);
  // Above, with a gap (segments a killed writer left past the head): the history goes on.
  const gap = (s: CatalogObject): Promise<SnapshotLink | null> =>
    Promise.resolve(
      s.key.includes(g2)
        ? { format: 3, prevKey: walSegmentKey(db, g1, 1, 2), prevSha256: digest(2) }
        : { format: 3, prevKey: "", prevSha256: "" },
    );
  const h = await anchorCatalog(catalogOf(), head, undefined, gap);
  assert.deepEqual(h.unreached.map((o) => o.key), [walSegmentKey(db, g1, 3, 3)]);
});

Deno.test("keys: txids past 2^53 - 1 are not parsed; txidHex refuses them", () => {
  assert.equal(parseKey(`${db}/generations/${g1}/snapshots/ffffffffffffffff.db`), null);
  assert.equal(
    parseKey(`${db}/generations/${g1}/snapshots/001fffffffffffff.db`)?.txid,
    2 ** 53 - 1,
  );
  assert.throws(() => txidHex(2 ** 64));
});

Deno.test("names: one path segment only", () => {
  for (const bad of ["a/b.db", "", ".", "..", "x\n"]) assert.equal(isValidDbName(bad), false, bad);
  assert.equal(isValidDbName("app.db"), true);
});

Deno.test("lease: held until it expires on a fake clock; renewal fails once taken over", async () => {
  const dir = await Deno.makeTempDir();
  const storage = fileStorage(dir);
  try {
    let now = 1_000_000;
    const clock = () => now;
    // Two processes of another host (so neither can be seen gone in /proc).
    const a = { host: "db-host-a", pid: 101 };
    const b = { host: "db-host-b", pid: 202 };
    const first = await acquireLease(storage, db, { leaseMs: 60_000, now: clock, holder: a });
    await assert.rejects(
      acquireLease(storage, db, { leaseMs: 60_000, now: clock, holder: b }),
      (err: WalsyncError) =>
        err.kind === "failure" && /pid \d+ since .*--takeover/.test(err.message),
    );
    now += 61_000;
    const second = await acquireLease(storage, db, { leaseMs: 60_000, now: clock, holder: b });
    await assert.rejects(renewLease(storage, first, 60_000, clock), /lost the lease/);
    const taken = await acquireLease(storage, db, {
      leaseMs: 60_000,
      now: clock,
      takeover: true,
      holder: a,
    });
    await assert.rejects(renewLease(storage, second, 60_000, clock), /lost the lease/);
    await renewLease(storage, taken, 60_000, clock);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe: a provider that ignores If-None-Match is named in one WARN line", async () => {
  const dir = await Deno.makeTempDir();
  const real = fileStorage(dir);
  const careless: Storage = {
    ...real,
    async createIfAbsent(key, bytes) {
      const current = await real.readTagged(key);
      return current
        ? real.replaceIfMatch(key, bytes, current.etag)
        : real.createIfAbsent(key, bytes);
    },
  };
  const lines: string[] = [];
  const logger: Logger = {
    log: (level: LogLevel, message: string) => lines.push(`${level} ${message}`),
  };
  try {
    const writer = createHistoryWriter(careless, db, { logger, leaseMs: 60_000 });
    await writer.acquire();
    assert.equal(
      lines.filter((l) => l.startsWith("WARN") && /conditional writes/.test(l)).length,
      1,
    );
    const honest = createHistoryWriter(real, "other.db", { logger, leaseMs: 60_000 });
    await honest.acquire();
    assert.equal(lines.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("retention (fake clock): deletes what no point in the window needs, moves the head's base first, keeps the present", async () => {
  const { takeSnapshot } = await import("../../src/ops/snapshot.ts");
  const { applyRetention } = await import("../../src/ops/retention.ts");
  const { readHistory } = await import("../../src/history/read.ts");
  const { restoreDatabase } = await import("../../src/ops/restore.ts");
  const { sqlite, dbFingerprint } = await import("../support/sqlite.ts");
  const dir = await Deno.makeTempDir();
  const storage = fileStorage(`${dir}/bucket`);
  try {
    const source = `${dir}/${db}`;
    await sqlite(source, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    const generations: string[] = [];
    for (let i = 0; i < 3; i++) {
      await sqlite(source, `INSERT INTO t VALUES (${i + 2});`);
      generations.push((await takeSnapshot(storage, source)).generation);
      await new Promise((r) => setTimeout(r, 5)); // distinct generation ids
    }
    // A clock a day ahead and a one-minute window: only the newest generation is needed.
    const now = Date.now() + 86_400_000;
    const result = await applyRetention(storage, db, 60_000, now);
    assert.equal(result.generations, 2);
    const history = await readHistory(storage, db);
    assert.equal(history.head?.base, generations[2]);
    assert.deepEqual(history.catalog.generations.map((g) => g.id), [generations[2]]);
    assert.deepEqual(history.unreached, []);
    const out = `${dir}/restored.db`;
    await restoreDatabase(storage, db, { output: out });
    assert.deepEqual(await dbFingerprint(out), await dbFingerprint(source));
    // Run again: nothing left to delete, and the present is never a candidate.
    assert.equal((await applyRetention(storage, db, 60_000, now + 86_400_000)).generations, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
