/**
 * Tools for the production tests (`production_test.ts`): run any long-lived `walsync`
 * command (watch, replicate) in the background with its stderr collected, write with the
 * `sqlite3` CLI, damage stored objects without Walsync code, scrape metrics, and see which TCP
 * ports a process listens on (from /proc, without asking the process).
 * @module
 */
import { DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { join } from "node:path";
import { mainTs, sqlite, type TestBucket, walsync } from "./helpers.ts";

/** A running `walsync` command. */
export interface Background {
  /** Process id. */
  pid: number;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Whether it has exited. */
  exited(): boolean;
  /** Waits until the log matches `pattern` `count` times; throws with the log on timeout. */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; count?: number }): Promise<void>;
  /** Sends `signal` (SIGTERM) and waits; returns the exit code and the whole log. */
  stop(signal?: Deno.Signal): Promise<{ code: number; log: string }>;
  /** SIGKILL when still running, and wait (for `finally`). */
  kill(): Promise<void>;
}

import { sleep, waitUntil } from "./watch_helpers.ts";

export { sleep, waitUntil };

function countMatches(text: string, pattern: RegExp): number {
  const flags = pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g";
  return [...text.matchAll(new RegExp(pattern.source, flags))].length;
}

/** Starts `walsync <args>` in the background (stdout discarded, stderr collected). */
export function startWalsync(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Background {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", mainTs, ...args],
    env: { NO_COLOR: "1", ...options.env },
    cwd: options.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  let status: Deno.CommandStatus | null = null;
  const done = child.status.then((s) => (status = s));
  return {
    pid: child.pid,
    log: () => text,
    exited: () => status !== null,
    async waitForLog(pattern, opts = {}) {
      const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
      const count = opts.count ?? 1;
      while (countMatches(text, pattern) < count) {
        if (status) {
          await reading;
          if (countMatches(text, pattern) >= count) return;
          throw new Error(`walsync exited (${status.code}) before logging ${pattern}:\n${text}`);
        }
        if (Date.now() > deadline) throw new Error(`walsync did not log ${pattern}:\n${text}`);
        await sleep(50);
      }
    },
    async stop(signal = "SIGTERM") {
      if (!status) {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
      }
      const s = await done;
      await reading;
      return { code: s.code, log: text };
    },
    async kill() {
      if (!status) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await done;
      await reading.catch(() => {});
    },
  };
}

/** The application's table, in WAL mode. */
export const appSchema = `PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, tag TEXT NOT NULL, n INTEGER, body TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS events_tag ON events(tag, n);`;

/** A fresh WAL database with the application's schema and a few rows. */
export async function appDatabase(dir: string, file = "app.db"): Promise<string> {
  const db = join(dir, file);
  await sqlite(
    db,
    `${appSchema}
     INSERT INTO events(tag, n, body, data)
       SELECT 'seed', value, hex(randomblob(40)), randomblob(500) FROM generate_series(1, 50);`,
  );
  return db;
}

/** One transaction of the application: a few rows, an update, a delete. */
export function commit(db: string, tag: string, n: number): Promise<string> {
  return sqlite(
    db,
    `.timeout 10000
     BEGIN;
     INSERT INTO events(tag, n, body, data)
       SELECT '${tag}', ${n}, printf('%s-%d %s', '${tag}', ${n}, hex(randomblob(16))),
              randomblob(1 + abs(random()) % 2000)
       FROM generate_series(1, 3);
     UPDATE events SET body = body || '+' WHERE id = (SELECT max(id) / 2 FROM events);
     DELETE FROM events WHERE id = (SELECT min(id) FROM events WHERE tag = '${tag}' AND n = ${
      n - 5
    });
     COMMIT;`,
  );
}

/**
 * An application committing `transactions` times in a bash loop of `sqlite3` processes,
 * sleeping `pause` seconds between them. Resolves when it is done; rejects on a failure.
 */
export async function writer(
  db: string,
  options: { transactions: number; tag?: string; pause?: number },
): Promise<void> {
  const script = `
set -e
db="$1"; n="$2"; tag="$3"; pause="$4"
for i in $(seq 1 "$n"); do
  sqlite3 -bail -cmd ".timeout 10000" "$db" "BEGIN;
    INSERT INTO events(tag, n, body, data)
      SELECT '$tag', $i, printf('%s-%d %s', '$tag', $i, hex(randomblob(16))), randomblob(1 + abs(random()) % 3000)
      FROM generate_series(1, 3);
    UPDATE events SET body = body || '+' WHERE id = (SELECT max(id) / 2 FROM events);
    DELETE FROM events WHERE id = (SELECT min(id) FROM events WHERE tag = '$tag' AND n = $i - 5);
    COMMIT;" >/dev/null
  if [ "$pause" != "0" ]; then sleep "$pause"; fi
done
`;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      script,
      "bash",
      db,
      String(options.transactions),
      options.tag ?? "w",
      String(options.pause ?? 0),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`writer failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Runs `walsync restore` into a fresh file of `dir` (extra arguments after `-o`). */
export async function restoreInto(
  dir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string; out: string }> {
  const out = join(dir, `restored-${crypto.randomUUID().slice(0, 8)}.db`);
  const r = await walsync(["restore", ...args, "-o", out], { env });
  return { ...r, out };
}

/** Runs SQL with the `sqlite3` CLI, waiting up to 10 s on locks; throws on failure. */
export async function sqliteRead(db: string, sql: string): Promise<string> {
  const out = await new Deno.Command("sqlite3", {
    args: ["-bail", "-cmd", ".timeout 10000", db, sql],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (out.code !== 0) throw new Error(`sqlite3 ${db} ${sql}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout).trim();
}

/** `.sha3sum` (every table's content) and `PRAGMA integrity_check` of a database. */
export async function fingerprint(db: string): Promise<{ sha3: string; integrity: string }> {
  const integrity = await sqliteRead(db, "PRAGMA integrity_check;");
  const sha3 = await sqliteRead(db, ".sha3sum");
  return { sha3, integrity };
}

/** The `.sha3sum` of a database (every table's content). */
export async function contentHash(db: string): Promise<string> {
  return await sqliteRead(db, ".sha3sum");
}

/** Flips one byte in the middle of a stored object, keeping its metadata (digest) as it was. */
export async function tamper(bucket: TestBucket, key: string): Promise<void> {
  const { bytes, metadata } = await bucket.read(key);
  const damaged = bytes.slice();
  damaged[Math.floor(damaged.length / 2)] ^= 0x5a;
  await bucket.write(key, { bytes: damaged, metadata });
}

/** Deletes one object (on `file://` also its metadata file) without Walsync code. */
export async function removeObject(bucket: TestBucket, key: string): Promise<void> {
  if (bucket.kind === "file") {
    const dir = (bucket as TestBucket & { dir: string }).dir;
    await Deno.remove(join(dir, key));
    await Deno.remove(join(dir, `${key}.meta.json`)).catch(() => {});
    return;
  }
  const s3 = bucket as TestBucket & { client: S3Client; bucket: string; prefix: string };
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${s3.prefix}/${key}` }));
}

/** A stored object of the bucket layout, parsed from its key. */
export interface StoredKey {
  key: string;
  db: string;
  generation: string;
  kind: "snapshot" | "wal";
  firstTxid: number;
  lastTxid: number;
}

const keyPattern =
  /^([^/]+)\/generations\/([^/]+)\/(?:snapshots\/([0-9a-f]{16})\.db|wal\/([0-9a-f]{16})-([0-9a-f]{16})\.wal)$/;

/** Every object of the layout in the bucket (of `db` when given), in key order. */
export async function storedObjects(bucket: TestBucket, db?: string): Promise<StoredKey[]> {
  const out: StoredKey[] = [];
  for (const key of await bucket.keys()) {
    const m = keyPattern.exec(key);
    if (!m || (db !== undefined && m[1] !== db)) continue;
    const [, name, generation, snap, first, last] = m;
    out.push(
      snap !== undefined
        ? {
          key,
          db: name,
          generation,
          kind: "snapshot",
          firstTxid: parseInt(snap, 16),
          lastTxid: parseInt(snap, 16),
        }
        : {
          key,
          db: name,
          generation,
          kind: "wal",
          firstTxid: parseInt(first, 16),
          lastTxid: parseInt(last, 16),
        },
    );
  }
  return out;
}

/** Generation ids of `db` in the bucket, oldest first. */
export async function generationsOf(bucket: TestBucket, db: string): Promise<string[]> {
  return [...new Set((await storedObjects(bucket, db)).map((k) => k.generation))].sort();
}

/** When a generation id says it started (ms since the epoch). */
export function generationStart(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  if (!m) throw new Error(`not a generation id: ${id}`);
  return Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

/** A TCP port nobody listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** GETs `url` and returns status and body, or null when the connection is refused. */
export async function httpGet(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return null;
  }
}

/** One sample of a Prometheus text page. */
export interface Scraped {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the sample lines of a Prometheus text exposition page. */
export function parseMetrics(text: string): Scraped[] {
  const out: Scraped[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\"/g, '"').replace(/\\n/g, "\n").replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  return inodes;
}

/** TCP ports process `pid` listens on (IPv4 and IPv6), as `address:port` in hex-decoded form. */
export function listeningPorts(pid: number): { address: string; port: number }[] {
  const mine = socketInodes(pid);
  const out: { address: string; port: number }[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== "0A" || !mine.has(cols[9])) continue;
      const [addrHex, portHex] = cols[1].split(":");
      let address = addrHex;
      if (addrHex.length === 8) {
        // IPv4, little-endian bytes
        address = [3, 2, 1, 0].map((i) => parseInt(addrHex.slice(i * 2, i * 2 + 2), 16)).join(".");
      }
      out.push({ address, port: parseInt(portHex, 16) });
    }
  }
  return out;
}

/** The first IPv4 address of this machine that is not loopback, if any. */
export function otherLocalAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    ?.address;
}

/** Permission bits of a file. */
export async function modeOf(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}
