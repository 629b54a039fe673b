/**
 * The torture test, bounded for CI: a fixed seed and a fixed number of random steps against a
 * `file://` bucket and a private MinIO server (see `test/torture/run.ts` for what a step and a
 * check are). `scripts/torture.sh --minutes N` runs it longer with new seeds.
 *
 * Operations that hit bugs known on today's code (symlinked database path, `file://` outages)
 * are off here unless `WALSYNC_TORTURE_ALL=1`; `scripts/torture.sh` always runs them.
 */
import { sdkTest } from "./helpers.ts";
import { allFeatures, type Features } from "./torture/operations.ts";
import { runTorture, TortureFailure } from "./torture/run.ts";

const all = Deno.env.get("WALSYNC_TORTURE_ALL") === "1";

/**
 * What CI runs until the known bugs are fixed (the lead switches each on after its fix):
 * - `symlink` off: a database watched through a symlink is never backed up after its first
 *   snapshot (with it on, seed 20261130 fails at step 20: the latest restore is 15 commits short).
 * - `fileOutage` off: a `file://` storage error starts a new generation instead of retrying
 *   (`scripts/torture.sh` reports "a storage outage started a new generation").
 * - `walRewrite` and `killWriter` on: they exercise the in-place WAL rewrite and frames past the
 *   published max frame, and pass with these seeds today (their races are narrow).
 */
const ciFeatures: Features = all ? allFeatures : {
  symlink: false,
  walRewrite: true,
  killWriter: true,
  fileOutage: false,
};

async function torture(backend: "file" | "s3", seed: number, steps: number): Promise<void> {
  try {
    const stats = await runTorture({
      seed,
      backend,
      steps,
      features: ciFeatures,
      maxBlob: 1 << 20,
      coverAll: true,
      checkEvery: 5,
      finalPoints: 4,
      // One backend through a symlinked path, the other by its real name (when symlinks are on).
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
