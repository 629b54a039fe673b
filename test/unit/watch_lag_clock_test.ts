/** Specification of the lag bookkeeping (src/watch/lag.ts); the clock is passed in by hand. */
import assert from "node:assert/strict";
import {
  createLagClock,
  lagSeconds,
  lagWarnAfterMs,
  readAll,
  sawUnread,
  seenAtOfSealed,
} from "../../src/watch/lag.ts";

Deno.test("lag clock: nothing waiting is 0; an unread commit ages from when it was first seen", () => {
  const c = createLagClock();
  assert.equal(lagSeconds(c, 0, true, 5000), 0);
  sawUnread(c, 1000);
  sawUnread(c, 3000); // seen again later: still counts from the first sighting
  assert.equal(lagSeconds(c, 0, true, 4000), 3);
  readAll(c);
  assert.equal(lagSeconds(c, 0, true, 4000), 0);
});

Deno.test("lag clock: a sealed segment keeps the age of its oldest commit while it waits for its upload", () => {
  const c = createLagClock();
  sawUnread(c, 1000);
  const seenAt = seenAtOfSealed(c, 2500);
  assert.equal(seenAt, 1000);
  readAll(c);
  assert.equal(lagSeconds(c, seenAt, true, 6000), 5);
  assert.equal(seenAtOfSealed(c, 7000), 7000, "nothing seen before: sealed now");
});

Deno.test("lag clock: failures count only while no generation runs (an idle replica with storage down has nothing waiting)", () => {
  const c = createLagClock();
  c.failingSince = 1000;
  assert.equal(lagSeconds(c, 0, true, 9000), 0);
  assert.equal(lagSeconds(c, 0, false, 9000), 8);
  sawUnread(c, 500);
  assert.equal(lagSeconds(c, 0, false, 9000), 8.5, "the oldest of all");
});

Deno.test("lag clock: the log says shipping is behind after 30 s, or 10 sync intervals when those are longer", () => {
  assert.equal(lagWarnAfterMs(1000), 30_000);
  assert.equal(lagWarnAfterMs(10_000), 100_000);
});
