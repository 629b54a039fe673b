/**
 * The torture test, bounded for CI: a fixed seed and a fixed number of random steps against a
 * `file://` bucket and a private MinIO server (see `test/support/torture/run.ts` for what a step and a
 * check are). `scripts/torture.sh --minutes N` runs it longer with new seeds.
 *
 * Every operation is on, including those that found bugs in the old watcher (a symlinked
 * database path, an in-place WAL rewrite, frames past SQLite's published max frame, `file://`
 * outages); each of those bugs also has a named test in `test/e2e/watch_committed_test.ts`,
 * `test/e2e/watch_shutdown_test.ts` or `test/e2e/torture_regressions_test.ts`.
 */
import { sdkTest } from "../support/bucket.ts";
import { allFeatures } from "../support/torture/operations.ts";
import { runTorture, TortureFailure } from "../support/torture/run.ts";

async function torture(backend: "file" | "s3", seed: number, steps: number): Promise<void> {
  try {
    const stats = await runTorture({
      seed,
      backend,
      steps,
      features: allFeatures,
      maxBlob: 1 << 20,
      coverAll: true,
      checkEvery: 5,
      finalPoints: 4,
      // One backend through a symlinked path, the other by its real name.
      symlink: backend === "file",
    });
    console.log(`torture ${backend}: ${JSON.stringify(stats)}`);
  } catch (err) {
    if (err instanceof TortureFailure) {
      console.error(err.details);
      throw new Error(err.message);
    }
    throw err;
  }
}

Deno.test({
  name: "torture (file://): restores equal the source after random commits, kills and restarts",
  ...sdkTest,
  fn: () => torture("file", 20261130, 26),
});

Deno.test({
  name: "torture (s3): restores equal the source after random commits, kills and outages",
  ...sdkTest,
  fn: () => torture("s3", 20261131, 16),
});
