/**
 * Specification of when a watcher wants its next tick (src/watch/schedule.ts): pure
 * functions of the schedule state and the clock, so these tests set the clock by hand.
 */
import assert from "node:assert/strict";
import {
  checkpointRetryMs,
  checkpointWanted,
  createSchedule,
  escapeFastForMs,
  escapePollMs,
  nextTickIn,
  recordFailure,
  retryDelayMs,
  slowEscapeForMs,
  slowEscapePollMs,
} from "../../src/watch/schedule.ts";

Deno.test("schedule: without a generation, or caught up and idle, the next tick is the regular sync", () => {
  const s = createSchedule();
  assert.equal(nextTickIn(s, false, true, 1000), 0);
  assert.equal(nextTickIn(s, true, false, 1000), 0);
});

Deno.test("schedule: a read that stopped before the end of the WAL asks for the next tick at once", () => {
  const s = createSchedule();
  s.onSlotZeroSince = 1000;
  s.checkpointDue = true;
  assert.equal(nextTickIn(s, true, true, 1000), 1);
});

Deno.test("schedule: after our own checkpoint, slot 0 is polled fast, then slowly, then left to the syncs", () => {
  const s = createSchedule();
  s.onSlotZeroSince = 10_000;
  s.escapeFast = true;
  assert.equal(nextTickIn(s, true, false, 10_000), escapePollMs);
  assert.equal(nextTickIn(s, true, false, 10_000 + escapeFastForMs - 1), escapePollMs);
  assert.equal(nextTickIn(s, true, false, 10_000 + escapeFastForMs), slowEscapePollMs);
  assert.equal(nextTickIn(s, true, false, 10_000 + slowEscapeForMs), 0);
  // Slot 0 reached some other way (a new generation, someone else's checkpoint): slow only.
  s.escapeFast = false;
  assert.equal(nextTickIn(s, true, false, 10_000), slowEscapePollMs);
});

Deno.test("schedule: a checkpoint that found the write lock busy is retried shortly", () => {
  const s = createSchedule();
  s.checkpointDue = true;
  assert.equal(nextTickIn(s, true, false, 0), checkpointRetryMs);
});

Deno.test("schedule: a checkpoint is wanted only with nothing pending, caught up, past the threshold, and moved since the last one", () => {
  const base = {
    offset: 5000,
    checkpointedAt: -1,
    pending: 0,
    behind: false,
    checkpointBytes: 4096,
  };
  assert.equal(checkpointWanted(base), true);
  assert.equal(checkpointWanted({ ...base, pending: 1 }), false);
  assert.equal(checkpointWanted({ ...base, behind: true }), false);
  assert.equal(checkpointWanted({ ...base, offset: 4096 }), false);
  assert.equal(checkpointWanted({ ...base, checkpointedAt: 5000 }), false);
});

Deno.test("schedule: failures back off 1 s, 2 s, 4 s … up to 30 s, and a failure also makes the next attempt a full sync", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map(retryDelayMs), [
    1000,
    2000,
    4000,
    8000,
    16000,
    30000,
    30000,
    30000,
  ]);
  const s = createSchedule();
  s.nextSyncAt = 99_999;
  assert.equal(recordFailure(s, 1000), 1000);
  assert.equal(s.retryAt, 2000);
  assert.equal(s.nextSyncAt, 0);
  assert.equal(recordFailure(s, 2000), 2000);
  assert.equal(s.failures, 2);
});
