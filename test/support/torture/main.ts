/**
 * Entry point of `scripts/torture.sh`: runs torture steps until the time is up.
 *
 * Usage: `deno run -A test/support/torture/main.ts --minutes N [--seed S] [--backend file|s3|both]
 * [--without symlink,walRewrite,killWriter,fileOutage] [--verbose]`.
 * Prints `torture: seed S step K: <what differed>` and exits 1 on a failure.
 * @module
 */
import { allFeatures, type Features } from "./operations.ts";
import { randomSeed } from "./prng.ts";
import { runTorture, TortureFailure, type TortureStats } from "./run.ts";

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const minutes = Number(option("minutes") ?? "5");
  const backends = (option("backend") ?? "both") === "both"
    ? ["file", "s3"] as const
    : [option("backend") as "file" | "s3"];
  const given = option("seed");
  const features: Features = { ...allFeatures };
  for (const name of (option("without") ?? "").split(",").filter((n) => n)) {
    if (!(name in features)) {
      console.error(`torture: unknown feature ${name}; use one of ${Object.keys(features)}`);
      Deno.exit(2);
    }
    features[name as keyof Features] = false;
  }
  const until = Date.now() + minutes * 60_000;
  const totals: TortureStats[] = [];
  let round = 0;
  // One seed per round; with a given seed, only that one round (a replay).
  while (Date.now() < until) {
    const seed = given !== undefined ? Number(given) : randomSeed();
    const backend = backends[round++ % backends.length];
    const roundUntil = Math.min(until, Date.now() + 5 * 60_000);
    console.error(`torture: seed ${seed} on ${backend}`);
    try {
      const stats = await runTorture({
        seed,
        backend,
        until: given !== undefined ? until : roundUntil,
        features,
        verbose: Deno.args.includes("--verbose"),
      });
      totals.push(stats);
      console.error(`torture: ${JSON.stringify(stats)}`);
    } catch (err) {
      if (err instanceof TortureFailure) {
        console.error(err.details);
        console.log(err.message);
        Deno.exit(1);
      }
      throw err;
    }
    if (given !== undefined) break;
  }
  const sum = (f: (s: TortureStats) => number) => totals.reduce((a, s) => a + f(s), 0);
  console.log(
    `torture: ok, ${totals.length} seeds, ${sum((s) => s.steps)} steps, ` +
      `${sum((s) => s.latestRestores)} latest restores in ${
        sum((s) => s.quietChecks)
      } quiet checks, ` +
      `${sum((s) => s.pointChecks)} recorded-point --txid checks, ` +
      `${sum((s) => s.txidChecks)} random --txid checks`,
  );
}
