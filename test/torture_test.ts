/**
 * The torture test, bounded for CI: a fixed seed and a fixed number of random steps against a
 * `file://` bucket and a private MinIO server (see `test/torture/run.ts` for what a step and a
 * check are). `scripts/torture.sh --minutes N` runs it longer with new seeds.
 *
 * Operations that hit bugs known on today's code (symlinked database path, in-place WAL
 * rewrite, frames past SQLite's published max frame, `file://` outages) are off here unless
 * `WALSYNC_TORTURE_ALL=1`; `scripts/torture.sh` always runs them.
 */
import { sdkTest } from "./helpers.ts";
import { allFeatures, type Features } from "./torture/operations.ts";
import { runTorture, TortureFailure } from "./torture/run.ts";

const all = Deno.env.get("WALSYNC_TORTURE_ALL") === "1";

/**
 * What CI runs until the known bugs are fixed (the lead switches each on after its fix):
 * - `symlink`: a database watched through a symlink is never backed up after its first
 *   snapshot (with it on, seed 20261130 fails at step 20: the latest restore is 15 commits short).
 * - `fileOutage`: a `file://` storage error starts a new generation instead of retrying
 *   ("a storage outage started a new generation", e.g. `scripts/torture.sh --seed 21`).
 * - `killWriter`: frames of a writer killed after writing its commit frame, before SQLite
 *   published it, are shipped (seed 77 step 6 once: a restore held a commit the source never had).
 * - `walRewrite`: a commit rewritten in place within the millisecond of watch's last look is
 *   missed (see test/torture_regressions_test.ts).
 * The last two are races: these seeds pass with them today, but not every time.
 */
const ciFeatures: Features = all ? allFeatures : {
  symlink: false,
  walRewrite: false,
  killWriter: false,
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
