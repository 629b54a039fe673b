/**
 * `watch --json-logs`: every line on stderr is one JSON object, retry lines included (they
 * come from the transfer layer, which logs through the watch's logger).
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { proxiedBucket, sdkTest } from "../support/bucket.ts";
import { workDir } from "../support/files.ts";
import { sqlite } from "../support/sqlite.ts";
import { startWatch } from "../support/walsync.ts";

Deno.test(
  "watch --json-logs: a retried upload logs its retry as a JSON line",
  sdkTest,
  async () => {
    const { proxy, via } = await proxiedBucket();
    try {
      const dir = await workDir();
      const db = join(dir, "app.db");
      await sqlite(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);");
      proxy.add({
        direction: "request",
        action: "flip",
        match: (e) => e.method === "PUT" && e.target.includes("/snapshots/"),
      });
      const watch = startWatch(via, [db], { args: ["--json-logs"] });
      let log: string;
      try {
        await watch.waitForLog(/snapshot uploaded/);
      } finally {
        log = (await watch.stop()).log;
      }
      assert.equal(proxy.fired.length, 1, "the proxy damaged one body");
      const lines = log.split("\n").filter((line) => line.trim() !== "");
      const retry = lines.filter((line) => line.includes("retrying upload"));
      assert.equal(retry.length, 1, log);
      for (const line of lines) {
        assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
      }
      const event = JSON.parse(retry[0]);
      assert.equal(event.level, "WARN");
      assert.equal(event.msg, "retrying upload");
      assert.match(event.attempt, /^2\/\d+$/);
    } finally {
      await proxy.stop();
    }
  },
);
