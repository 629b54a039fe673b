/**
 * Specification of the replication lag a watcher reports (`status().lagSeconds`, exported as
 * `walsync_replication_lag_seconds`): the age of the oldest commit not yet durable in the
 * replica, moving as soon as shipping falls behind for any reason, not only after an error.
 * The watcher runs in this process against a bucket whose segment uploads can be held; the
 * application writes through the `sqlite3` CLI (another process).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileStorage } from "../../src/storage/file.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { createLimiter, createWatcher, watchDefaults } from "../../src/watch/mod.ts";
import { appSchema } from "../support/application.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { sleep } from "../support/wait.ts";

/** Runs `fn` with a `Date.now` that moves 5 ms forward on every reading. */
function withTickingClock<T>(fn: () => T): T {
  const realNow = Date.now;
  let now = realNow();
  Date.now = () => (now += 5);
  try {
    return fn();
  } finally {
    Date.now = realNow;
  }
}

/** A file bucket whose WAL segment uploads wait while `hold` is set. */
function heldStorage(dir: string) {
  const inner = fileStorage(dir);
  let release: (() => void) | null = null;
  let gate: Promise<void> = Promise.resolve();
  const storage: Storage = {
    ...inner,
    location: inner.location,
    async put(key, body, options) {
      if (key.endsWith(".wal")) await gate;
      return inner.put(key, body, options);
    },
    get: (key) => inner.get(key),
    head: (key) => inner.head(key),
    list: (prefix) => inner.list(prefix),
    delete: (keys) => inner.delete(keys),
    check: () => inner.check(),
    close: () => inner.close(),
  };
  return {
    storage,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    release() {
      release?.();
    },
  };
}

Deno.test("lag: a commit waiting on a slow upload makes the lag grow from when it was seen, with no error; shipped, it is 0 again", async () => {
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const bucket = heldStorage(join(dir, "bucket"));
  const silent = { log() {} };
  const watcher = createWatcher(db, bucket.storage, createLimiter(2), {
    ...watchDefaults,
    syncIntervalMs: 100,
    logger: silent,
  });
  try {
    await watcher.tick(); // the first generation
    assert.equal(watcher.status().lagSeconds, 0);
    bucket.hold();
    await sqlite(db, "INSERT INTO events(tag, n) VALUES ('slow', 1);");
    const ticking = watcher.tick(); // its upload now waits
    await sleep(300);
    const first = watcher.status().lagSeconds;
    await sleep(300);
    const second = watcher.status().lagSeconds;
    assert.ok(first > 0, `lag ${first} while a commit waits for its upload`);
    assert.ok(second > first, `lag ${first} then ${second}: it must keep growing`);
    assert.equal(watcher.status().syncErrors, 0);
    bucket.release();
    await ticking;
    assert.equal(watcher.status().lagSeconds, 0);
  } finally {
    bucket.release();
    await watcher.close();
  }
});

Deno.test("lag: a commit not read yet counts from the moment the status is asked for, before any sync", async () => {
  const dir = await workDir();
  const db = join(dir, "app.db");
  await sqlite(db, appSchema);
  const watcher = createWatcher(db, fileStorage(join(dir, "bucket")), createLimiter(2), {
    ...watchDefaults,
    logger: { log() {} },
  });
  try {
    await watcher.tick();
    await sqlite(db, "INSERT INTO events(tag, n) VALUES ('unread', 1);");
    // Seen just now, even with a clock that moves between any two readings (as a slow
    // machine's does): the age is measured from one reading.
    assert.equal(withTickingClock(() => watcher.status().lagSeconds), 0);
    await sleep(200);
    assert.ok(watcher.status().lagSeconds > 0.1, "the unread commit ages");
    await watcher.tick(); // a full sync: read and shipped
    assert.equal(watcher.status().lagSeconds, 0);
  } finally {
    await watcher.close();
  }
});
