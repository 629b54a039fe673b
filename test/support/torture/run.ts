/**
 * The torture run: random operations on a live database watched by `walsync watch`, and after
 * every quiet period a check that a restore equals the source and that earlier recorded points
 * still restore to what the source held then. Every failure names the seed and the step.
 * @module
 */
import { join } from "node:path";
import { workDir } from "../files.ts";
import {
  type DbState,
  type DbStatus,
  inspect,
  listDb,
  listedPoints,
  restore,
  statusDb,
  verifyDb,
} from "./inspect.ts";
import { Model } from "./model.ts";
import {
  checkpointSize,
  drawOperation,
  type Features,
  type OpContext,
  releaseReader,
  runOperation,
  shuffledOperations,
} from "./operations.ts";
import { prng } from "./prng.ts";
import { cliWriter, nodeWriter, schemaSql } from "./writers.ts";
import { fileStorage, minioStorage, sourcePaths, Watcher } from "./world.ts";

/** How a run is set up. */
export interface TortureOptions {
  seed: number;
  backend: "file" | "s3";
  /** Steps to run (with `until`, whichever comes first). */
  steps?: number;
  /** Stop starting steps after this time (epoch ms). */
  until?: number;
  features: Features;
  /** `--sync-interval` of the watcher, in ms. */
  syncMs?: number;
  /** A quiet-period check after about every this many steps (random, mean). */
  checkEvery?: number;
  /** Largest blob a row may get (bytes). */
  maxBlob?: number;
  /** Watch through a symlinked path (when `features.symlink`); drawn at random unless given. */
  symlink?: boolean;
  /** Run every operation at least once, early (what a short CI run needs). */
  coverAll?: boolean;
  /** At the end, restore at most this many recorded points (all unless given), drawn at random. */
  finalPoints?: number;
  /** Log a line per step to stderr. */
  verbose?: boolean;
}

/** What a run did. */
export interface TortureStats {
  seed: number;
  backend: string;
  steps: number;
  quietChecks: number;
  latestRestores: number;
  pointChecks: number;
  txidChecks: number;
  recordedPoints: number;
  counts: Record<string, number>;
}

/** A failed check: the message starts with `torture: seed S step K:`. */
export class TortureFailure extends Error {
  constructor(message: string, readonly details: string) {
    super(message);
    this.name = "TortureFailure";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run being set up or under way. */
interface Run {
  c: OpContext;
  stats: TortureStats;
  /** The step under way (0 before the first). */
  progress: { step: number };
  fail: Fail;
  /** What the checks need. */
  env: CheckEnv & { syncMs: number };
  /** Its temporary directory (source, restores). */
  root: string;
}

/** Sets up storage, the source database's paths, the writers and the model of a run. */
async function setUpRun(options: TortureOptions): Promise<Run> {
  const r = prng(options.seed);
  const root = await workDir();
  const scratch = join(root, "restores");
  await Deno.mkdir(scratch);
  const storage = options.backend === "s3" ? await minioStorage() : await fileStorage();
  const symlinkDrawn = r.chance(0.5);
  const symlink = options.features.symlink && (options.symlink ?? symlinkDrawn);
  const paths = await sourcePaths(root, symlink);
  const syncMs = options.syncMs ?? 200;
  const watcher = new Watcher(storage, paths.watched, `${syncMs}ms`);
  // Writers go through the symlink or the real path, at random, like applications configured
  // either way.
  const writerPath = () => (r.chance(0.5) ? paths.link : paths.real);
  const stats: TortureStats = {
    seed: options.seed,
    backend: options.backend,
    steps: 0,
    quietChecks: 0,
    latestRestores: 0,
    pointChecks: 0,
    txidChecks: 0,
    recordedPoints: 0,
    counts: {},
  };
  const recent: string[] = [];
  const started = Date.now();
  const progress = { step: 0 };
  const c: OpContext = {
    r,
    model: new Model(),
    paths,
    storage,
    watcher,
    cli: cliWriter(writerPath),
    node: nodeWriter(writerPath),
    features: options.features,
    maxBlob: options.maxBlob ?? 4 * 1024 * 1024,
    maxBytes: 24 * 1024 * 1024,
    disturbed: true,
    outage: null,
    bucketName: paths.name,
    reader: null,
    scratch,
    note(text) {
      const at = ((Date.now() - started) / 1000).toFixed(1);
      const line = `step ${progress.step} (+${at}s): ${text}`;
      recent.push(line);
      if (recent.length > 40) recent.shift();
      if (options.verbose) console.error(`torture: ${line}`);
    },
    count(what, n = 1) {
      stats.counts[what] = (stats.counts[what] ?? 0) + n;
    },
  };
  const fail = (what: string): never => {
    throw new TortureFailure(
      `torture: seed ${options.seed} step ${progress.step}: ${what}`,
      `symlinked path: ${paths.watched !== paths.real}; last steps:\n${recent.join("\n")}\n` +
        `watch log (tail):\n${watcher.tail()}`,
    );
  };
  const env = { bucketName: paths.name, scratch, syncMs, stats, fail };
  return { c, stats, progress, fail, env, root };
}

/** Runs steps until the step count or the time is reached, then the final checks. */
async function runSteps(run: Run, options: TortureOptions): Promise<void> {
  const { c, stats, progress, fail, env } = run;
  await c.cli.run([`PRAGMA page_size=${c.r.pick([1024, 4096, 8192])};`, ...schemaSql(0)]);
  const { watched, real } = c.paths;
  c.note(`source ${watched}${watched !== real ? ` -> ${real}` : ""}`);
  await c.watcher.start(checkpointSize(c));
  const checkEvery = options.checkEvery ?? 4;
  const pending = options.coverAll ? shuffledOperations(c.r) : [];
  const done = () =>
    (options.steps !== undefined && progress.step >= options.steps) ||
    (options.until !== undefined && Date.now() >= options.until);
  while (!done()) {
    progress.step++;
    const name = drawOperation(c, await c.watcher.running(), pending);
    try {
      await runOperation(c, name);
    } catch (err) {
      if (err instanceof TortureFailure) throw err;
      fail(`${name} failed: ${err instanceof Error ? err.message : err}`);
    }
    c.count(name);
    await expectSourceAtModel(c, fail);
    if (c.r.chance(1 / checkEvery)) {
      await quietCheck(c, env);
      await pointChecks(c, { ...env, all: false });
    }
    stats.steps = progress.step;
  }
  // At the end: the last state, and every point recorded on the way (or a sample).
  await quietCheck(c, env);
  await pointChecks(c, { ...env, all: true, most: options.finalPoints });
  const problems = await verifyDb(c.storage.bucket, env.bucketName);
  if (problems.length > 0) fail(`walsync verify: ${problems.join("; ").slice(0, 600)}`);
  stats.recordedPoints = c.model.points.length;
}

/**
 * Runs the torture test once; resolves with its statistics, rejects with a {@link TortureFailure}.
 * @example
 * const stats = await runTorture({ seed: 7, backend: "file", steps: 20, features: allFeatures });
 */
export async function runTorture(options: TortureOptions): Promise<TortureStats> {
  const run = await setUpRun(options);
  const { c } = run;
  let passed = false;
  try {
    await runSteps(run, options);
    passed = true;
    return run.stats;
  } finally {
    await c.watcher.kill().catch(() => {});
    await releaseReader(c).catch(() => {});
    await c.node.close().catch(() => {});
    // A failed verbose run keeps its source and (file://) bucket for a post-mortem.
    const keep = options.verbose && !passed;
    if (keep) console.error(`torture: kept ${run.root} and ${c.storage.bucket.arg}`);
    if (!keep || c.storage.bucket.kind !== "file") await c.storage.dispose().catch(() => {});
    if (!keep) await Deno.remove(run.root, { recursive: true }).catch(() => {});
  }
}

type Fail = (what: string) => never;

/** The source must hold exactly the model's last commit (else the test itself is wrong). */
async function expectSourceAtModel(c: OpContext, fail: Fail): Promise<void> {
  const [line] = await c.cli.run(["SELECT seq FROM meta;"]);
  if (Number(line) !== c.model.seq) {
    fail(`test bug: source is at commit ${line}, the model at ${c.model.seq}`);
  }
}

interface CheckEnv {
  bucketName: string;
  scratch: string;
  stats: TortureStats;
  fail: Fail;
}

function describe(state: DbState): string {
  return `commit ${state.seq}, ${state.rows} rows, integrity ${state.integrity.slice(0, 80)}, ` +
    `sha3 ${state.sha3.slice(0, 12)}`;
}

/**
 * Brings storage and the watcher up, waits until the latest txid stops moving for more than two
 * sync intervals, and requires a latest restore to equal the source; records the point.
 * Backoff after an outage can hold shipping back, so a mismatch is retried until a deadline
 * (longer after a disturbance) before it counts as a failure.
 */
async function quietCheck(c: OpContext, env: CheckEnv & { syncMs: number }): Promise<void> {
  const { stats, fail } = env;
  c.note("quiet check");
  await c.storage.up();
  await c.watcher.start(checkpointSize(c));
  stats.quietChecks++;
  const source = await inspect(c.paths.real);
  if (source.seq !== c.model.seq || source.shape !== c.model.history.get(c.model.seq)) {
    fail(`test bug: source (${describe(source)}) is not the model's commit ${c.model.seq}`);
  }
  const deadline = Date.now() + (c.disturbed ? 60_000 : 25_000);
  let last = -2;
  let stableSince = Date.now();
  let tried = -2;
  let latest: { txid: number | null; state: DbState } | null = null;
  let status: DbStatus | null = null;
  while (Date.now() < deadline) {
    status = await statusDb(c.storage.bucket, env.bucketName).catch(() => null);
    const txid = status?.latestTxid ?? -2;
    if (txid !== last) {
      last = txid;
      stableSince = Date.now();
    }
    const quiet = txid >= 0 && Date.now() - stableSince > 2 * env.syncMs;
    if (quiet && txid !== tried) {
      tried = txid;
      const got = await restore(c.storage.bucket, env.bucketName, env.scratch);
      stats.latestRestores++;
      if (got.code !== 0) fail(`latest restore failed (exit ${got.code}): ${got.error}`);
      latest = { txid: got.txid, state: await inspect(got.path) };
      await Deno.remove(got.path).catch(() => {});
      if (latest.state.sha3 === source.sha3 && latest.state.integrity === "ok") break;
    }
    await sleep(env.syncMs);
    if (!(await c.watcher.running())) await c.watcher.start(checkpointSize(c));
  }
  if (!latest) fail(`no backup appeared for ${c.paths.watched} (latest txid ${last})`);
  const { txid, state } = latest!;
  if (state.integrity !== "ok") fail(`latest restore (txid ${txid}) integrity: ${state.integrity}`);
  if (state.sha3 !== source.sha3) {
    fail(
      `latest restore (txid ${txid}: ${describe(state)}) differs from the source ` +
        `(${describe(source)})`,
    );
  }
  const order = c.model.observe(txid!, state.seq!);
  if (order) fail(order);
  if (status && !status.chainOk) {
    fail(`status reports a broken chain: ${status.problems.join("; ").slice(0, 500)}`);
  }
  c.model.points.push({ txid: txid!, sha3: source.sha3, seq: source.seq!, step: stats.steps + 1 });
  c.disturbed = false;
  const outage = c.outage;
  c.outage = null;
  const checked = c.storage.bucket.kind === "s3" || c.features.fileOutage;
  if (outage && checked && outage.starts === c.watcher.starts) {
    const { generations } = await listDb(c.storage.bucket, env.bucketName);
    if (generations !== outage.generations) {
      fail(
        `a storage outage started a new generation (${outage.generations} before, ` +
          `${generations} after) although watch kept running`,
      );
    }
  }
}

/**
 * Restores earlier recorded points (`--txid`) and compares them with what the source held then,
 * and a few random txids of the listing, which must hold a commit the model knows, in txid order.
 */
async function pointChecks(
  c: OpContext,
  env: CheckEnv & { all: boolean; most?: number },
): Promise<void> {
  const { stats, fail } = env;
  const points = c.model.points.slice(0, -1);
  let chosen = env.all ? points : [c.r.pick(points.length ? points : [null])].filter((p) => p);
  while (env.most !== undefined && chosen.length > env.most) {
    chosen = chosen.filter((_, i) => i !== c.r.int(0, chosen.length - 1));
  }
  for (const point of chosen) {
    if (!point) continue;
    const got = await restore(c.storage.bucket, env.bucketName, env.scratch, point.txid);
    stats.pointChecks++;
    if (got.code !== 0) {
      fail(`restore --txid ${point.txid} (recorded at step ${point.step}) failed: ${got.error}`);
    }
    const state = await inspect(got.path);
    await Deno.remove(got.path).catch(() => {});
    if (state.sha3 !== point.sha3 || state.integrity !== "ok") {
      fail(
        `restore --txid ${point.txid} (${describe(state)}) is not what the source held at step ` +
          `${point.step} (commit ${point.seq}, sha3 ${point.sha3.slice(0, 12)})`,
      );
    }
  }
  const listed = await listedPoints(c.storage.bucket, env.bucketName);
  const txids = listed.flatMap((p) =>
    Array.from({ length: p.txidLast - p.txidFirst + 1 }, (_, i) => p.txidFirst + i)
  );
  const random = env.all ? 3 : 1;
  for (let i = 0; i < random && txids.length > 0; i++) {
    const txid = c.r.pick(txids);
    const got = await restore(c.storage.bucket, env.bucketName, env.scratch, txid);
    stats.txidChecks++;
    if (got.code !== 0) fail(`restore --txid ${txid} (listed) failed: ${got.error}`);
    const state = await inspect(got.path);
    await Deno.remove(got.path).catch(() => {});
    if (state.integrity !== "ok") fail(`restore --txid ${txid} integrity: ${state.integrity}`);
    if (state.seq === null) {
      if (state.tables !== 0) fail(`restore --txid ${txid} has tables but no meta row`);
      continue; // a database created, its schema not yet committed
    }
    const expected = c.model.history.get(state.seq);
    if (expected === undefined) {
      fail(`restore --txid ${txid} holds commit ${state.seq}, never made`);
    }
    if (state.shape !== expected) {
      fail(`restore --txid ${txid} holds commit ${state.seq} with other rows than the source had`);
    }
    const order = c.model.observe(txid, state.seq);
    if (order) fail(order);
  }
}
