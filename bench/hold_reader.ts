/**
 * What merely holding a read transaction costs an application's writer: the floor under any WAL
 * shipper that protects frames this way (walsync and Litestream both do).
 *
 * ```
 * deno run -A bench/hold_reader.ts [--transactions 200000] [--rotate-ms 1000,50] [--rounds 2]
 * ```
 *
 * For each round it runs `watch_writer.ts throughput` on a fresh database three ways: alone, and
 * with a second process that holds a read transaction on it and moves it to a second connection
 * every `--rotate-ms` (begin the new one, then end the old one, as `src/watch/mod.ts` does). The holder
 * never reads the WAL, never checkpoints and uploads nothing. Ratios are against the writer alone
 * in the same round. Nothing asserts on time.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const writerScript = join(here, "watch_writer.ts");

if (Deno.args[0] === "hold") {
  // Child mode: hold a read transaction on the database until killed.
  const { DatabaseSync } = await import("node:sqlite");
  const [path, rotateMs] = [Deno.args[1], Number(Deno.args[2])];
  const conns = [new DatabaseSync(path), new DatabaseSync(path)];
  for (const c of conns) c.exec("PRAGMA wal_autocheckpoint=0");
  const begin = (c: InstanceType<typeof DatabaseSync>) => {
    c.exec("BEGIN");
    c.prepare("SELECT count(*) FROM sqlite_master").get();
  };
  let active = 0;
  begin(conns[active]);
  console.log("holding");
  setInterval(() => {
    const next = 1 - active;
    begin(conns[next]);
    conns[active].exec("COMMIT");
    active = next;
  }, rotateMs);
} else {
  const { values } = parseArgs({
    options: {
      transactions: { type: "string", default: "200000" },
      "rotate-ms": { type: "string", default: "1000,50" },
      rounds: { type: "string", default: "2" },
    },
  });
  const transactions = values.transactions!;
  const rotations = values["rotate-ms"]!.split(",").map(Number);
  const dir = await Deno.makeTempDir({ prefix: "walsync-hold-" });
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", ...args] }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout);
  };
  const writer = async (db: string): Promise<{ seconds: number; cpuMs: number }> => {
    const lines = (await run([writerScript, "throughput", db, transactions])).trim().split("\n");
    return JSON.parse(lines[lines.length - 1]);
  };
  try {
    console.log(`hold_reader: ${transactions} single-row transactions per run`);
    for (let round = 1; round <= Number(values.rounds); round++) {
      const fresh = async (name: string) => {
        const db = join(dir, `${name}-${round}.db`);
        await run([writerScript, "setup", db]);
        return db;
      };
      const alone = await writer(await fresh("alone"));
      console.log(
        `round ${round} alone        ${alone.seconds.toFixed(3)} s  cpu ${
          alone.cpuMs.toFixed(0)
        } ms`,
      );
      for (const ms of rotations) {
        const db = await fresh(`held-${ms}`);
        const holder = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", import.meta.url, "hold", db, String(ms)],
          stdout: "piped",
        }).spawn();
        const reader = holder.stdout.getReader();
        await reader.read(); // "holding"
        const held = await writer(db);
        holder.kill("SIGTERM");
        await holder.status;
        reader.releaseLock();
        await holder.stdout.cancel().catch(() => {});
        console.log(
          `round ${round} held/${String(ms).padEnd(5)} ${held.seconds.toFixed(3)} s  cpu ${
            held.cpuMs.toFixed(0)
          } ms  ratio ${(alone.seconds / held.seconds).toFixed(2)}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
