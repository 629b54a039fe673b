/**
 * Retention's plan, in process: which generations `planRetention` keeps and deletes for a window
 * and a clock. Applying it to a real bucket is tested end to end in
 * `test/e2e/production_test.ts`.
 */
import assert from "node:assert/strict";
import type { DatabaseCatalog, Generation } from "../../src/history/catalog.ts";
import { newGenerationId } from "../../src/format/layout.ts";
import { planRetention } from "../../src/ops/retention.ts";

const hour = 3_600_000;

/** A catalog whose generations started `ages` ms before `now` (oldest first). */
function catalogOf(now: number, ages: number[], withoutSnapshot: number[] = []): DatabaseCatalog {
  const generations: Generation[] = ages.map((age, i) => {
    const started = new Date(now - age);
    const id = newGenerationId(started);
    const snap = {
      key: `app.db/generations/${id}/snapshots/${String(i * 10).padStart(16, "0")}.db`,
      txid: i * 10,
      lastTxid: i * 10,
      size: 4096,
    };
    return {
      id,
      started,
      snapshots: withoutSnapshot.includes(i) ? [] : [snap],
      segments: [],
    };
  });
  return { db: "app.db", generations, unknown: [] };
}

Deno.test("retention: planRetention keeps the window's base generation and everything newer, deletes older ones", () => {
  const now = Date.parse("2026-11-24T12:00:00Z");
  const ids = (gs: Generation[]) => gs.map((g) => g.id);

  // Ages 10 h, 5 h, 2 h, 30 min; window 3 h: the 5 h one restores the window's start.
  let c = catalogOf(now, [10 * hour, 5 * hour, 2 * hour, hour / 2]);
  let plan = planRetention(c, now, 3 * hour);
  assert.equal(plan.base?.id, c.generations[1].id);
  assert.deepEqual(ids(plan.remove), ids(c.generations.slice(0, 1)));
  assert.deepEqual(ids(plan.keep), ids(c.generations.slice(1)));

  // Several older than the window: all but the base go.
  c = catalogOf(now, [30 * hour, 20 * hour, 10 * hour, 5 * hour, hour]);
  plan = planRetention(c, now, 6 * hour);
  assert.equal(plan.base?.id, c.generations[2].id);
  assert.deepEqual(ids(plan.remove), ids(c.generations.slice(0, 2)));

  // A generation started exactly at the window's start is the base.
  c = catalogOf(now, [10 * hour, 3 * hour, hour]);
  plan = planRetention(c, now, 3 * hour);
  assert.equal(plan.base?.id, c.generations[1].id);
  assert.deepEqual(ids(plan.remove), [c.generations[0].id]);

  // Every generation older than the window: the newest is the base and is never deleted.
  c = catalogOf(now, [10 * hour, 8 * hour, 6 * hour]);
  plan = planRetention(c, now, hour);
  assert.equal(plan.base?.id, c.generations[2].id);
  assert.deepEqual(ids(plan.keep), [c.generations[2].id]);
  assert.deepEqual(ids(plan.remove), ids(c.generations.slice(0, 2)));

  // The newest generation has no snapshot yet: it is kept, and the base has a snapshot.
  c = catalogOf(now, [10 * hour, 8 * hour, 6 * hour], [2]);
  plan = planRetention(c, now, hour);
  assert.equal(plan.base?.id, c.generations[1].id);
  assert.deepEqual(ids(plan.keep), ids(c.generations.slice(1)));
  assert.deepEqual(ids(plan.remove), [c.generations[0].id]);

  // A generation without a snapshot is never the base: the one before it restores that time.
  c = catalogOf(now, [10 * hour, 5 * hour, hour], [1]);
  plan = planRetention(c, now, 3 * hour);
  assert.equal(plan.base?.id, c.generations[0].id);
  assert.deepEqual(plan.remove, []);

  // Nothing older than the window's start: keep everything.
  c = catalogOf(now, [2 * hour, hour, 60_000]);
  plan = planRetention(c, now, 3 * hour);
  assert.deepEqual(plan.remove, []);
  assert.deepEqual(ids(plan.keep), ids(c.generations));

  // Window 0 (keep everything), a single generation, no generations.
  c = catalogOf(now, [300 * hour, 200 * hour, 100 * hour]);
  assert.deepEqual(planRetention(c, now, 0).remove, []);
  assert.deepEqual(ids(planRetention(c, now, 0).keep), ids(c.generations));
  assert.deepEqual(planRetention(catalogOf(now, [100 * hour]), now, hour).remove, []);
  assert.deepEqual(planRetention(catalogOf(now, []), now, hour), { keep: [], remove: [] });

  // The clock moving forward moves the window: more goes as time passes, never the newest.
  c = catalogOf(now, [4 * hour, 3 * hour, 2 * hour, hour]);
  const removed = [-0.5, 0.5, 1, 2, 4, 10].map((h) =>
    planRetention(c, now + h * hour, 2 * hour).remove.length
  );
  assert.deepEqual(removed, [1, 2, 3, 3, 3, 3]);
});
