/**
 * The torture test's world: the source database's directory (optionally reached through a
 * symlink), the storage (a `file://` bucket or a private MinIO server) that can go down and come
 * back, and the `walsync watch` process that can be killed and restarted.
 * @module
 */
import { join } from "node:path";
import { fileBucket, s3BucketOn, type TestBucket } from "../bucket.ts";
import { startWatch, type WalsyncProcess } from "../walsync.ts";
import { type MinioServer, startMinio } from "../minio.ts";

/** Storage that can be taken down and brought back. */
export interface OutageStorage {
  /** The bucket the CLI uses. */
  readonly bucket: TestBucket;
  /** False between {@link down} and {@link up}. */
  readonly isUp: boolean;
  /** Makes every request fail (MinIO stopped, or the `file://` directory replaced by a file). */
  down(): Promise<void>;
  /** Brings the same objects back. */
  up(): Promise<void>;
  /** Removes everything. */
  dispose(): Promise<void>;
}

/**
 * A `file://` bucket. Down: its directory is moved aside and a regular file takes its place, so
 * every write fails with ENOTDIR (tests run as root here, where permissions would not stop one).
 */
export async function fileStorage(): Promise<OutageStorage> {
  const bucket = await fileBucket();
  const aside = `${bucket.dir}.away`;
  let isUp = true;
  const up = async (): Promise<void> => {
    if (isUp) return;
    await Deno.remove(bucket.dir);
    await Deno.rename(aside, bucket.dir);
    isUp = true;
  };
  return {
    bucket,
    get isUp() {
      return isUp;
    },
    async down() {
      if (!isUp) return;
      await Deno.rename(bucket.dir, aside);
      await Deno.writeTextFile(bucket.dir, "storage is down (torture test)\n");
      isUp = false;
    },
    up,
    async dispose() {
      await up().catch(() => {});
      await Deno.remove(bucket.dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A bucket on a private MinIO server. Down: the server is stopped (its data kept). */
export async function minioStorage(): Promise<OutageStorage> {
  const server: MinioServer = await startMinio();
  const bucket = s3BucketOn(server);
  let isUp = true;
  return {
    bucket,
    get isUp() {
      return isUp;
    },
    async down() {
      if (!isUp) return;
      await server.pause();
      isUp = false;
    },
    async up() {
      if (isUp) return;
      await server.resume();
      isUp = true;
    },
    async dispose() {
      bucket.client.destroy();
      await server.stop();
    },
  };
}

/** Where the source database lives and the name the watcher is given. */
export interface SourcePaths {
  /** The real file: `<root>/real/app.db`. */
  real: string;
  /** What `watch` is given: the real path, or `<root>/link/app.db`, a symlink to it. */
  watched: string;
  /** The symlink (same as `real` when there is none). */
  link: string;
  /** Name of the database in the bucket. */
  name: string;
}

/** Makes `<root>/real/` and, with `symlink`, `<root>/link/app.db -> ../real/app.db`. */
export async function sourcePaths(root: string, symlink: boolean): Promise<SourcePaths> {
  await Deno.mkdir(join(root, "real"), { recursive: true });
  const real = join(root, "real", "app.db");
  if (!symlink) return { real, watched: real, link: real, name: "app.db" };
  await Deno.mkdir(join(root, "link"), { recursive: true });
  const link = join(root, "link", "app.db");
  await Deno.symlink(join("..", "real", "app.db"), link);
  return { real, watched: link, link, name: "app.db" };
}

/** The `walsync watch` process of a run: started, killed and restarted by operations. */
export class Watcher {
  private process: WalsyncProcess | null = null;
  /** Logs of earlier processes (kept for failure messages). */
  private readonly past: string[] = [];
  /** Starts counted, for the summary. */
  starts = 0;

  constructor(
    private readonly storage: OutageStorage,
    private readonly path: string,
    private readonly syncInterval: string,
  ) {}

  /** True while a started process has not been seen to exit. */
  async running(): Promise<boolean> {
    if (!this.process) return false;
    try {
      await this.process.waitForLog(/(?!)/, { timeoutMs: 0 });
    } catch (err) {
      if (String(err).includes("watch exited")) {
        this.past.push(this.process.log());
        this.process = null;
        return false;
      }
    }
    return true;
  }

  /** Starts `watch` unless it runs; `checkpointSize` is its `--checkpoint-size`. */
  async start(checkpointSize: number): Promise<void> {
    if (await this.running()) return;
    this.starts++;
    this.process = startWatch(this.storage.bucket, [this.path], {
      syncInterval: this.syncInterval,
      args: ["--checkpoint-size", String(checkpointSize)],
    });
  }

  /** Whether the running process has started its own generation (logged "generation started"). */
  hasGeneration(): boolean {
    return /generation started/.test(this.process?.log() ?? "");
  }

  /** SIGKILL (no chance to ship what is pending). */
  async kill(): Promise<void> {
    if (!this.process) return;
    await this.process.kill();
    this.past.push(this.process.log());
    this.process = null;
  }

  /** SIGTERM; resolves with the exit code (0 expected: it ships what is pending and exits). */
  async terminate(): Promise<{ code: number; log: string } | null> {
    if (!this.process) return null;
    const stopped = await this.process.stop("SIGTERM");
    this.past.push(stopped.log);
    this.process = null;
    return { code: stopped.code, log: stopped.log };
  }

  /** The last lines this run's watchers logged. */
  tail(lines = 25): string {
    const all = [...this.past, this.process?.log() ?? ""].join("--- restart ---\n");
    return all.split("\n").slice(-lines).join("\n");
  }
}
