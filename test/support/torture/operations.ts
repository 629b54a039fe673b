/**
 * The torture test's operations: what the writers, the watcher and the storage can do in one
 * step, drawn at random with weights. Each operation tells the model which commits it made.
 * @module
 */
import type { Prng } from "./prng.ts";
import type { Model, TxEffect } from "./model.ts";
import { parseEffect, schemaSql, type TxPlan, txSql, type Writer } from "./writers.ts";
import type { OutageStorage, SourcePaths, Watcher } from "./world.ts";
import { inspect, listDb, restore } from "./inspect.ts";
import { type SqliteSession, sqliteSession } from "../sqlite.ts";

/** Operations that hit bugs known on today's code; each can be switched off. */
export interface Features {
  /** Watch the database through a symlinked path (`link/app.db -> real/app.db`). */
  symlink: boolean;
  /** Restart the WAL and rewrite it in place at the same size (RESTART checkpoint, same-size commit). */
  walRewrite: boolean;
  /** SIGKILL a writer in the middle of a large transaction. */
  killWriter: boolean;
  /** Take `file://` storage down (MinIO outages are always on). */
  fileOutage: boolean;
}

/** Every feature on (what `scripts/torture.sh` runs). */
export const allFeatures: Features = {
  symlink: true,
  walRewrite: true,
  killWriter: true,
  fileOutage: true,
};

/** What operations work on. */
export interface OpContext {
  r: Prng;
  model: Model;
  paths: SourcePaths;
  storage: OutageStorage;
  watcher: Watcher;
  cli: Writer;
  node: Writer;
  features: Features;
  /** Largest blob a row may get. */
  maxBlob: number;
  /** Total blob bytes above which transactions also delete the largest rows. */
  maxBytes: number;
  /** Set when storage was down or the watcher restarted since the last check (allow backoff). */
  disturbed: boolean;
  /**
   * Generations stored and watcher starts when storage went down with the watcher running: a
   * storage error must not start a new generation, so until the next check only a restart, a
   * page-size change or a new database file may add one. Null when nothing is to be checked.
   */
  outage: { generations: number; starts: number } | null;
  /** Name of the database in the bucket. */
  bucketName: string;
  /** Directory for restores. */
  scratch: string;
  /** An application's long read transaction (a `sqlite3` session), while one is held. */
  reader: SqliteSession | null;
  /** One line per step, for the log. */
  note(text: string): void;
  /** Counts an event for the summary. */
  count(what: string, n?: number): void;
}

/** Operation names and weights. */
export const operationWeights = {
  commit: 30,
  burst: 8,
  concurrent: 6,
  checkpoint: 8,
  vacuum: 3,
  walRestart: 4,
  rollbackBig: 2,
  killWriter: 2,
  killDuringBurst: 3,
  pageSize: 1.5,
  recreate: 1.5,
  watchKill: 3,
  watchTerm: 2,
  watchStart: 4,
  storageDown: 2,
  storageUp: 3,
  holdReader: 2,
} as const;

/** An operation's name. */
export type OperationName = keyof typeof operationWeights;

const checkpointModes = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"] as const;

/**
 * A checkpoint that waits at most a second for readers (watch's held reader, an application's
 * long read transaction) instead of the writers' 10 s, then returns busy.
 */
function checkpointSql(mode: string): string[] {
  return [
    "PRAGMA busy_timeout = 1000;",
    `PRAGMA wal_checkpoint(${mode});`,
    "PRAGMA busy_timeout = 10000;",
  ];
}

/** A blob length: mostly tiny, some pages, a few multi-MB. */
function blobLen(c: OpContext): number {
  const tier = c.r.weighted({ tiny: 60, medium: 30, large: 10 });
  if (tier === "tiny") return c.r.int(1, 200);
  if (tier === "medium") return c.r.int(1000, 64_000);
  return c.r.int(Math.min(256_000, c.maxBlob), c.maxBlob);
}

/** A random transaction over the rows the model knows. */
export function randomPlan(c: OpContext): TxPlan {
  const plan: TxPlan = {
    inserts: [],
    rewrites: [],
    deletes: [],
    deleteLargest: 0,
    rollback: false,
  };
  const ids = c.model.ids();
  const groups = c.r.int(1, 3);
  for (let g = 0; g < groups; g++) {
    const len = blobLen(c);
    const count = len > 100_000 ? c.r.int(1, 2) : len > 1000 ? c.r.int(1, 10) : c.r.int(1, 50);
    plan.inserts.push({ count, len });
  }
  if (ids.length > 0 && c.r.chance(0.4)) {
    plan.rewrites.push({ ids: [c.r.pick(ids), c.r.pick(ids)], len: blobLen(c) });
  }
  if (ids.length > 0 && c.r.chance(0.5)) {
    const n = c.r.int(1, 5);
    for (let i = 0; i < n; i++) plan.deletes.push(c.r.pick(ids));
  }
  if (c.model.bytes() > c.maxBytes) plan.deleteLargest = c.r.int(2, 6);
  plan.rollback = c.r.chance(0.05);
  return plan;
}

/** Runs one transaction on `writer`; returns its effect when it committed. */
async function commitOn(writer: Writer, plan: TxPlan): Promise<TxEffect | null> {
  const lines = await writer.run(txSql(plan, writer.name));
  return plan.rollback ? null : parseEffect(lines, writer.name);
}

/** Applies effects to the model; throws on a commit the model cannot place. */
function record(c: OpContext, effects: (TxEffect | null)[]): void {
  const committed = effects.filter((e): e is TxEffect => e !== null);
  const problem = c.model.apply(committed);
  if (problem) throw new Error(`model: ${problem}`);
  c.count("commits", committed.length);
}

function pickWriter(c: OpContext): Writer {
  return c.r.chance(0.5) ? c.cli : c.node;
}

async function burst(c: OpContext, writer: Writer, n: number): Promise<(TxEffect | null)[]> {
  const plans = Array.from({ length: n }, () => randomPlan(c));
  const effects: (TxEffect | null)[] = [];
  for (const plan of plans) effects.push(await commitOn(writer, plan));
  return effects;
}

/** Random delay in ms, drawn now (so the draw does not depend on timing). */
function delay(c: OpContext, max: number): number {
  return c.r.int(0, max);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Weights of the operations possible in the current state (0 for the others). */
export function possibleWeights(c: OpContext, watcherUp: boolean): Record<OperationName, number> {
  const weights: Record<OperationName, number> = { ...operationWeights };
  if (!c.features.killWriter) weights.killWriter = 0;
  if (!c.features.fileOutage && c.storage.bucket.kind === "file") weights.storageDown = 0;
  if (!c.storage.isUp) weights.storageDown = 0;
  else weights.storageUp = 0;
  if (watcherUp) weights.watchStart = 0;
  else {
    weights.watchKill = 0;
    weights.watchTerm = 0;
    weights.killDuringBurst = 0;
  }
  return weights;
}

/**
 * Draws an operation possible in the current state. While `pending` (operations every run must
 * cover, in random order) holds one that is possible, that one comes first.
 */
export function drawOperation(
  c: OpContext,
  watcherUp: boolean,
  pending: OperationName[] = [],
): OperationName {
  const weights = possibleWeights(c, watcherUp);
  const due = pending.findIndex((name) => weights[name] > 0);
  if (due >= 0) return pending.splice(due, 1)[0];
  return c.r.weighted(weights);
}

/** Every operation with a weight, in an order drawn from `r` (for runs that must cover all). */
export function shuffledOperations(r: Prng): OperationName[] {
  const names = Object.keys(operationWeights) as OperationName[];
  for (let i = names.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [names[i], names[j]] = [names[j], names[i]];
  }
  return names;
}

/** `--checkpoint-size` for a new watcher: the default, or small enough to checkpoint often. */
export function checkpointSize(c: OpContext): number {
  return c.r.pick([64 * 1024, 1024 * 1024, 4 * 1024 * 1024]);
}

/** What each operation does (each tells the model about the commits it made). */
const operations: Record<OperationName, (c: OpContext) => Promise<void>> = {
  async commit(c) {
    const writer = pickWriter(c);
    const plan = randomPlan(c);
    c.note(
      `${writer.name} commit ${JSON.stringify(plan.inserts)}${plan.rollback ? " rollback" : ""}`,
    );
    record(c, [await commitOn(writer, plan)]);
  },
  async burst(c) {
    const writer = pickWriter(c);
    const n = c.r.int(2, 8);
    c.note(`${writer.name} burst of ${n}`);
    record(c, await burst(c, writer, n));
  },
  async concurrent(c) {
    const [a, b] = [c.r.int(1, 5), c.r.int(1, 5)];
    c.note(`cli ${a} and node ${b} commits at once`);
    const [x, y] = await Promise.all([burst(c, c.cli, a), burst(c, c.node, b)]);
    record(c, [...x, ...y]);
  },
  async checkpoint(c) {
    const writer = pickWriter(c);
    const mode = c.r.pick(checkpointModes);
    c.note(`${writer.name} checkpoint ${mode}`);
    await writer.run(checkpointSql(mode));
  },
  async vacuum(c) {
    const writer = pickWriter(c);
    c.note(`${writer.name} VACUUM`);
    await writer.run(["VACUUM;"]);
  },
  async walRestart(c) {
    const writer = pickWriter(c);
    const inPlace = c.features.walRewrite && c.r.chance(0.6);
    const mode = inPlace ? "RESTART" : "TRUNCATE";
    // The same plan twice writes the same number of frames: after a RESTART checkpoint the
    // second commit rewrites the WAL from its start in place, at the same size.
    const plan: TxPlan = {
      inserts: [{ count: c.r.int(1, 5), len: c.r.int(1, 3000) }],
      rewrites: [],
      deletes: [],
      deleteLargest: 0,
      rollback: false,
    };
    c.note(`${writer.name} WAL restart (${mode} checkpoint between two same-size commits)`);
    const first = await commitOn(writer, plan);
    await writer.run(checkpointSql(mode));
    const second = await commitOn(writer, plan);
    record(c, [first, second]);
  },
  async rollbackBig(c) {
    const len = c.r.int(200_000, Math.max(200_000, c.maxBlob / 2));
    c.note(`cli rolls back a transaction of ${len}-byte rows after spilling it to the WAL`);
    const plan: TxPlan = {
      inserts: [{ count: c.r.int(3, 6), len }],
      rewrites: [],
      deletes: [],
      deleteLargest: 0,
      rollback: true,
    };
    await c.cli.run(["PRAGMA cache_size = 20;", ...txSql(plan, "cli")]);
  },
  async killWriter(c) {
    const len = c.r.int(100_000, Math.max(100_000, c.maxBlob));
    const count = c.r.int(2, 6);
    const after = delay(c, 400);
    c.note(`sqlite3 killed ${after} ms into a ${count}x${len}-byte transaction`);
    await killedWriter(c, { count, len }, after);
  },
  async killDuringBurst(c) {
    const n = c.r.int(3, 10);
    const after = delay(c, 1500);
    const restart = c.r.chance(0.7);
    const size = checkpointSize(c);
    const writer = pickWriter(c);
    c.note(
      `${writer.name} burst of ${n}, watch SIGKILLed after ${after} ms${
        restart ? ", restarted" : ""
      }`,
    );
    const work = burst(c, writer, n);
    await sleep(after);
    await c.watcher.kill();
    c.count("watchKills");
    c.disturbed = true;
    if (restart) await c.watcher.start(size);
    record(c, await work);
  },
  async pageSize(c) {
    c.outage = null;
    const pageSize = c.r.pick([1024, 2048, 4096, 8192, 16384, 65536]);
    const kill = c.r.chance(0.5);
    const restart = c.r.chance(0.6);
    const size = checkpointSize(c);
    c.note(`page size ${pageSize} (watch ${kill ? "SIGKILLed" : "stopped"} first)`);
    if (kill) await c.watcher.kill();
    else await c.watcher.terminate();
    await releaseReader(c);
    c.disturbed = true;
    await c.node.release();
    // Leaving WAL mode needs every other connection gone; the held reader of a watcher blocks it.
    await c.cli.run([
      "PRAGMA journal_mode=DELETE;",
      `PRAGMA page_size=${pageSize};`,
      "VACUUM;",
      "PRAGMA journal_mode=WAL;",
    ]);
    if (restart) await c.watcher.start(size);
  },
  async recreate(c) {
    c.outage = null;
    const writer = pickWriter(c);
    const pageSize = c.r.pick([1024, 4096, 8192]);
    c.note(`database deleted and recreated by ${writer.name} (page size ${pageSize})`);
    await c.node.release();
    await releaseReader(c);
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(c.paths.real + suffix).catch(() => {});
    }
    const seq = c.model.seq + 1;
    await writer.run([`PRAGMA page_size=${pageSize};`, ...schemaSql(seq)]);
    record(c, [{ seq, writer: writer.name, written: [], deleted: [], recreated: true }]);
  },
  async watchKill(c) {
    c.note("watch SIGKILLed");
    await c.watcher.kill();
    c.count("watchKills");
    c.disturbed = true;
  },
  async watchTerm(c) {
    c.note("watch stopped with SIGTERM");
    const stopped = await c.watcher.terminate();
    c.count("watchTerms");
    c.disturbed = true;
    // Before its signal handlers are installed (still starting) SIGTERM ends it as it would
    // any process; once it logged its first line it must ship and exit 0.
    const started = stopped !== null && stopped.log.trim() !== "";
    if (stopped && started && stopped.code !== 0 && c.storage.isUp) {
      throw new Error(`watch exited ${stopped.code} on SIGTERM with storage up:\n${stopped.log}`);
    }
    // It shipped what was pending before exiting: every commit so far is restorable now.
    if (stopped?.code === 0 && c.storage.isUp && /generation started/.test(stopped.log)) {
      await expectShippedAfterStop(c);
    }
  },
  async watchStart(c) {
    const size = checkpointSize(c);
    c.note(`watch started (--checkpoint-size ${size})`);
    await c.watcher.start(size);
    c.disturbed = true;
  },
  async storageDown(c) {
    const writer = pickWriter(c);
    const n = c.r.int(1, 4);
    const hold = delay(c, 2500);
    const back = c.r.chance(0.5);
    c.note(
      `storage down, ${writer.name} commits ${n}, ${hold} ms later ${back ? "up" : "still down"}`,
    );
    // Only once this watcher runs its own generation: the first one may wait for storage.
    if (c.outage === null && (await c.watcher.running()) && c.watcher.hasGeneration()) {
      const listed = await listDb(c.storage.bucket, c.bucketName);
      c.outage = { generations: listed.generations, starts: c.watcher.starts };
    }
    await c.storage.down();
    c.count("outages");
    c.disturbed = true;
    // Commits while storage is down, and long enough for the watcher to fail at shipping them.
    record(c, await burst(c, writer, n));
    await sleep(hold);
    if (back) await c.storage.up();
  },
  async holdReader(c) {
    if (c.reader) {
      c.note("application ends its long read transaction");
      await releaseReader(c);
    } else {
      c.note("application begins a long read transaction");
      c.reader = sqliteSession(c.paths.real);
      await c.reader.run("BEGIN; SELECT count(*) FROM t;");
    }
  },
  async storageUp(c) {
    c.note("storage up");
    await c.storage.up();
  },
};

/** Runs operation `name`. */
export function runOperation(c: OpContext, name: OperationName): Promise<void> {
  return operations[name](c);
}

/** After a clean stop, a latest restore must equal the source (checked with watch down). */
async function expectShippedAfterStop(c: OpContext): Promise<void> {
  const got = await restore(c.storage.bucket, c.bucketName, c.scratch);
  c.count("restoresAfterSigterm");
  if (got.code !== 0) throw new Error(`restore after SIGTERM failed (${got.code}): ${got.error}`);
  const [want, have] = [await inspect(c.paths.real), await inspect(got.path)];
  await Deno.remove(got.path).catch(() => {});
  if (have.sha3 !== want.sha3 || have.integrity !== "ok") {
    throw new Error(
      `after SIGTERM (exit 0) the latest restore (txid ${got.txid}, commit ${have.seq}, ` +
        `integrity ${have.integrity}) is not the source (commit ${want.seq})`,
    );
  }
}

/** Ends the application's long read transaction, if one is held. */
export async function releaseReader(c: OpContext): Promise<void> {
  const reader = c.reader;
  c.reader = null;
  if (!reader) return;
  await reader.run("COMMIT;").catch(() => {});
  await reader.close();
}

/**
 * Starts a large insert-only transaction in a `sqlite3` process and SIGKILLs it after `afterMs`.
 * Whether it committed is read from the source afterwards; its rows are known from the plan.
 */
async function killedWriter(
  c: OpContext,
  group: { count: number; len: number },
  afterMs: number,
): Promise<void> {
  const plan: TxPlan = {
    inserts: [group],
    rewrites: [],
    deletes: [],
    deleteLargest: 0,
    rollback: false,
  };
  const child = new Deno.Command("sqlite3", {
    args: ["-bail", "-cmd", ".timeout 10000", c.paths.real],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const input = child.stdin.getWriter();
  await input.write(new TextEncoder().encode(txSql(plan, "cli").join("\n") + "\n"));
  await input.close().catch(() => {});
  await sleep(afterMs);
  try {
    child.kill("SIGKILL");
  } catch { /* finished already */ }
  await child.status;
  const [seqLine] = await c.cli.run(["SELECT seq FROM meta;"]);
  const seq = Number(seqLine);
  if (seq === c.model.seq) {
    c.count("killedWritersRolledBack");
    return;
  }
  c.count("killedWritersCommitted");
  const written: [number, number][] = [];
  for (let v = 1; v <= group.count; v++) written.push([seq * 1000 + v, group.len]);
  record(c, [{ seq, writer: "cli (killed)", written, deleted: [] }]);
}
