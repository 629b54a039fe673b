/**
 * A throwaway MinIO server for tests: random credentials, a free 127.0.0.1 port, a temp
 * data directory, and one fresh bucket.
 *
 * The binary comes from `WALSYNC_MINIO_BIN`, then `$HOME/go/bin/minio`, then `minio` on
 * PATH (`scripts/install-deps.sh` builds it). MinIO runs under a small `sh` watchdog that
 * stops it and removes its directory if the test process dies without calling `stop()`,
 * so a crashed or killed test run never leaves a server behind.
 * @module
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { join } from "node:path";

/** A running MinIO server and what a client needs to reach it. */
export interface MinioServer {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** Root user (random). */
  accessKey: string;
  /** Root password (random). */
  secretKey: string;
  /** A bucket created at start, `walsync-test`. */
  bucket: string;
  /** `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL_S3` for this server. */
  env: Record<string, string>;
  /** Creates another bucket. */
  createBucket(name: string): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
  /** Stops the server but keeps its data, so `resume()` brings back the same objects. */
  pause(): Promise<void>;
  /** Starts the server again on the same port and data directory; waits until it is live. */
  resume(): Promise<void>;
}

/** Name of the bucket every server starts with. */
export const testBucket = "walsync-test";

// The watchdog: runs MinIO in the background and waits. TERM/INT (pause, stop) stop MinIO
// and exit; HUP or the death of the parent (the test process) also delete the temp dir.
// `sleep & wait` keeps the shell interruptible so a signal is handled at once.
const watchdog = `
"$0" "$@" >>"$WALSYNC_MINIO_LOG" 2>&1 &
child=$!
stop_child() { kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; }
trap 'stop_child; exit 0' TERM INT
trap 'stop_child; rm -rf "$WALSYNC_MINIO_TMP"; exit 0' HUP
while kill -0 "$WALSYNC_PARENT_PID" 2>/dev/null && kill -0 "$child" 2>/dev/null; do
  sleep 1 & wait $!
done
if kill -0 "$child" 2>/dev/null; then stop_child; rm -rf "$WALSYNC_MINIO_TMP"; fi
`;

/** Finds the MinIO binary; throws with the install hint when there is none. */
export function findMinioBinary(): string {
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("WALSYNC_MINIO_BIN");
  if (fromEnv) candidates.push(fromEnv);
  const home = Deno.env.get("HOME");
  if (home) candidates.push(join(home, "go", "bin", "minio"));
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir) candidates.push(join(dir, "minio"));
  }
  for (const path of candidates) {
    try {
      const stat = Deno.statSync(path);
      if (stat.isFile && ((stat.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not there; try the next place
    }
  }
  throw new Error(
    "MinIO binary not found (looked at $WALSYNC_MINIO_BIN, $HOME/go/bin/minio, PATH); " +
      "run `source scripts/install-deps.sh` or set WALSYNC_MINIO_BIN",
  );
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function randomToken(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

async function logTail(path: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").slice(-20).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Starts a new MinIO server with a fresh bucket named {@link testBucket}. */
export async function startMinio(): Promise<MinioServer> {
  const binary = findMinioBinary();
  const tmp = await Deno.makeTempDir({ prefix: "walsync-minio-" });
  const dataDir = join(tmp, "data");
  const logPath = join(tmp, "minio.log");
  await Deno.mkdir(dataDir);
  await Deno.mkdir(join(tmp, "certs"));
  const port = freePort();
  const consolePort = freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKey = `walsync${randomToken(8)}`;
  const secretKey = randomToken(32);
  let child: Deno.ChildProcess | undefined;

  const spawn = async (): Promise<void> => {
    const command = new Deno.Command("sh", {
      args: [
        "-c",
        watchdog,
        binary,
        "server",
        "--quiet",
        "--address",
        `127.0.0.1:${port}`,
        "--console-address",
        `127.0.0.1:${consolePort}`,
        "--certs-dir",
        join(tmp, "certs"),
        dataDir,
      ],
      env: {
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
        WALSYNC_MINIO_LOG: logPath,
        WALSYNC_MINIO_TMP: tmp,
        WALSYNC_PARENT_PID: String(Deno.pid),
      },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    });
    const started = command.spawn();
    // The server must not keep a test process alive on its own; stop() or the watchdog ends it.
    started.unref();
    child = started;
    let exited = false;
    started.status.then(() => (exited = true));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (exited) {
        throw new Error(`MinIO exited during start-up:\n${await logTail(logPath)}`);
      }
      try {
        const res = await fetch(`${endpoint}/minio/health/live`);
        await res.body?.cancel();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await halt();
    throw new Error(`MinIO did not become live within 30 s:\n${await logTail(logPath)}`);
  };

  const halt = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running) return;
    try {
      running.kill("SIGTERM");
    } catch {
      // already gone
    }
    // Unreferenced at spawn; waiting for it must keep the event loop alive.
    running.ref();
    await running.status;
  };

  const env: Record<string, string> = {
    AWS_ACCESS_KEY_ID: accessKey,
    AWS_SECRET_ACCESS_KEY: secretKey,
    AWS_REGION: "us-east-1",
    AWS_ENDPOINT_URL_S3: endpoint,
  };

  const createBucket = async (name: string): Promise<void> => {
    const client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    });
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    } finally {
      client.destroy();
    }
  };

  const cleanUpAtExit = (): void => {
    if (child) {
      // HUP makes the watchdog stop MinIO and delete the temp dir once this process is gone.
      try {
        child.kill("SIGHUP");
      } catch {
        // already gone
      }
    } else {
      try {
        Deno.removeSync(tmp, { recursive: true });
      } catch {
        // already removed
      }
    }
  };
  liveServers.add(cleanUpAtExit);

  await spawn();
  try {
    await createBucket(testBucket);
  } catch (err) {
    await halt();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    liveServers.delete(cleanUpAtExit);
    throw err;
  }

  const server: MinioServer = {
    endpoint,
    accessKey,
    secretKey,
    bucket: testBucket,
    env,
    createBucket,
    async stop(): Promise<void> {
      await halt();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      liveServers.delete(cleanUpAtExit);
    },
    pause: halt,
    async resume(): Promise<void> {
      if (child) return;
      await spawn();
    },
  };
  return server;
}

// Servers not yet stopped, each with a synchronous clean-up for process exit (a test that
// fails before its stop() must not leave a server or a data directory behind).
const liveServers = new Set<() => void>();
globalThis.addEventListener("unload", () => {
  for (const cleanUp of liveServers) cleanUp();
});

let shared: Promise<MinioServer> | undefined;

/**
 * One server for the whole test process, started on first use and stopped when the
 * process unloads, so every test file shares it. Tests must not `stop()` or `pause()` it;
 * start a private server with {@link startMinio} for that.
 */
export function sharedMinio(): Promise<MinioServer> {
  if (!shared) {
    shared = startMinio();
    shared.catch(() => {
      // a failed start is retried by the next caller
      shared = undefined;
    });
  }
  return shared;
}
