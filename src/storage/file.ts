/**
 * A local directory used as the bucket (`file:///abs/dir`, `file://./relative`).
 *
 * Each object is a file; its metadata sits beside it in `<name>.meta.json`. Writes go to a
 * temporary file in the same directory, are fsynced, then renamed, metadata last, so a
 * reader never sees half an object under its real name.
 * @module
 */
import { dirname, join, relative, sep } from "node:path";
import { syncDirectory } from "../support/durable.ts";
import { writeAll } from "../support/write_all.ts";
import { accessRefused, integrityError, WalsyncError } from "../support/errors.ts";
import { bytesStream, hashingStream, sha256Hex } from "../support/hash.ts";
import type {
  BodySource,
  ConditionalWrite,
  Metadata,
  ObjectInfo,
  PutOptions,
  Storage,
  TaggedObject,
} from "./storage.ts";
import { checkFreeSpace, diskFullError, isDiskFull } from "./transfer/disk.ts";
import type { RangeSource } from "./transfer/download.ts";

const metaSuffix = ".meta.json";
const tempMarker = ".walsync-tmp-";

/** The file of an object; keys with empty or `..` segments are refused (they would leave the root). */
function pathOf(root: string, key: string): string {
  if (key.split("/").some((part) => part === ".." || part === "")) {
    throw new WalsyncError("usage", `invalid object key ${JSON.stringify(key)}`);
  }
  return join(root, key);
}

/** Roots this process has created or found: from then on a missing root is an error. */
const knownRoots = new Set<string>();

/**
 * Makes the directories between the root and `path`, one level at a time. The root itself is
 * created once (a new bucket); after that, a root that is gone (an unmounted disk, a moved
 * directory) is a storage error, never quietly created again on the disk below it.
 */
async function ensureParent(root: string, path: string): Promise<void> {
  if (!knownRoots.has(root)) {
    await Deno.mkdir(root, { recursive: true });
    knownRoots.add(root);
  }
  let current = root;
  for (const part of relative(root, dirname(path)).split(sep).filter((p) => p !== "")) {
    current = join(current, part);
    try {
      await Deno.mkdir(current);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) continue;
      if (err instanceof Deno.errors.NotFound) {
        throw new WalsyncError(
          "storage",
          `the bucket directory ${root} is gone (unmounted or moved?); bring it back and watch carries on`,
        );
      }
      throw err;
    }
  }
}

/** Writes a body to a new temporary file beside `path` (its directory exists), fsynced; returns its name. */
async function writeTemp(path: string, body: ReadableStream<Uint8Array>): Promise<string> {
  const temp = `${path}${tempMarker}${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    for await (const chunk of body) await writeAll(file, chunk);
    await file.sync();
    file.close();
    return temp;
  } catch (err) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/** The metadata beside an object's file; empty when there is none. */
async function readMetadata(key: string, path: string): Promise<Metadata> {
  let text: string;
  try {
    text = await Deno.readTextFile(path + metaSuffix);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw err;
  }
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error();
    const metadata: Metadata = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === "string") metadata[k] = v;
    return metadata;
  } catch {
    throw integrityError(key, "metadata file is not valid JSON");
  }
}

/** Opens an object's file for reading; a missing file is an integrity error naming the key. */
async function openObject(key: string, path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw integrityError(key, "object is missing");
    throw err;
  }
}

/**
 * Runs `task` holding an exclusive `flock` on a lock file beside `path` (named like a temp
 * file, so listings skip it): conditional writes of other processes wait for it.
 */
async function withFileLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  const lock = await Deno.open(`${path}${tempMarker}lock`, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  try {
    await lock.lock(true);
    return await task();
  } finally {
    lock.close(); // closing the descriptor releases the flock
  }
}

/** {@link Storage.readTagged}: the etag is the SHA256 of the bytes. */
async function readTagged(root: string, key: string): Promise<TaggedObject | null> {
  const path = pathOf(root, key);
  try {
    // Bytes and time from one descriptor: the object is replaced by renaming a new file
    // over it, and a time read by path could belong to the next version.
    const file = await Deno.open(path, { read: true });
    try {
      const stat = await file.stat();
      const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
      return { bytes, etag: sha256Hex(bytes), lastModified: stat.mtime ?? undefined };
    } finally {
      try {
        file.close();
      } catch { /* closed by the stream */ }
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** {@link Storage.createIfAbsent}: a hard link of a temporary file, under the key's lock. */
async function createIfAbsent(
  root: string,
  key: string,
  bytes: Uint8Array,
): Promise<ConditionalWrite> {
  const path = pathOf(root, key);
  await ensureParent(root, path);
  return await withFileLock(path, async () => {
    const temp = await writeTemp(path, bytesStream(bytes));
    try {
      // link(2) fails when the name exists: the create is exclusive even without the lock.
      await Deno.link(temp, path);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) return { written: false };
      throw err;
    } finally {
      await Deno.remove(temp).catch(() => {});
    }
    await syncDirectory(dirname(path));
    return { written: true, etag: sha256Hex(bytes) };
  });
}

/** {@link Storage.replaceIfMatch}: compare and rename, under the key's lock. */
async function replaceIfMatch(
  root: string,
  key: string,
  bytes: Uint8Array,
  etag: string,
): Promise<ConditionalWrite> {
  const path = pathOf(root, key);
  await ensureParent(root, path);
  return await withFileLock(path, async () => {
    const current = await readTagged(root, key);
    if (current === null || current.etag !== etag) return { written: false };
    const temp = await writeTemp(path, bytesStream(bytes));
    try {
      await Deno.rename(temp, path);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
    await syncDirectory(dirname(path));
    return { written: true, etag: sha256Hex(bytes) };
  });
}

/** {@link Storage.put}: object and metadata written to temporary files, checked, renamed. */
async function putObject(
  root: string,
  key: string,
  body: BodySource,
  options: PutOptions,
): Promise<void> {
  const path = pathOf(root, key);
  await ensureParent(root, path);
  // The bucket's disk is the storage here: a full one is a storage error naming the space.
  await checkFreeSpace(dirname(path), options.size, `object ${key}`, "storage");
  const hashing = hashingStream();
  let tempObject: string;
  try {
    tempObject = await writeTemp(path, body().pipeThrough(hashing.stream));
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    throw await diskFullError(dirname(path), options.size, `upload of ${key}`, "storage");
  }
  let tempMeta: string | undefined;
  try {
    if (hashing.digest() !== options.sha256 || hashing.bytes() !== options.size) {
      throw integrityError(
        key,
        "source changed while uploading",
        `${options.sha256} (${options.size} bytes)`,
        `${hashing.digest()} (${hashing.bytes()} bytes)`,
      );
    }
    const json = new TextEncoder().encode(JSON.stringify(options.metadata, null, 2) + "\n");
    tempMeta = await writeTemp(path + metaSuffix, bytesStream(json));
    // Metadata lands first, then the object: a crash in between leaves metadata without
    // an object, which listing never shows, instead of an object without its digest.
    // An old object under the key goes first for the same reason.
    await Deno.remove(path).catch(() => {});
    await Deno.rename(tempMeta, path + metaSuffix);
    tempMeta = undefined;
    await Deno.rename(tempObject, path);
    await syncDirectory(dirname(path));
  } catch (err) {
    await Deno.remove(tempObject).catch(() => {});
    if (tempMeta) await Deno.remove(tempMeta).catch(() => {});
    if (!isDiskFull(err)) throw err;
    throw await diskFullError(dirname(path), options.size, `upload of ${key}`, "storage");
  }
}

/** {@link Storage.get}: the file's stream, with its size, time and metadata. */
async function getObject(
  root: string,
  key: string,
): Promise<{ body: ReadableStream<Uint8Array>; info: ObjectInfo }> {
  const path = pathOf(root, key);
  const file = await openObject(key, path);
  const stat = await file.stat();
  const metadata = await readMetadata(key, path).catch((err) => {
    file.close();
    throw err;
  });
  return {
    body: file.readable,
    info: { key, size: stat.size, metadata, lastModified: stat.mtime ?? undefined },
  };
}

/** {@link RangeSource.readRangeInto}: reads from `start + at.filled` until `into` is full. */
async function readRangeInto(
  root: string,
  key: string,
  start: number,
  into: Uint8Array,
  at: { filled: number },
): Promise<void> {
  const file = await openObject(key, pathOf(root, key));
  try {
    await file.seek(start + at.filled, Deno.SeekMode.Start);
    while (at.filled < into.byteLength) {
      const n = await file.read(into.subarray(at.filled));
      if (n === null) break;
      at.filled += n;
    }
  } finally {
    file.close();
  }
  if (at.filled < into.byteLength) {
    throw integrityError(key, "object is truncated", `${start + into.byteLength} bytes`);
  }
}

/** {@link Storage.head}: size, time and metadata, or `null` when the file does not exist. */
async function headObject(root: string, key: string): Promise<ObjectInfo | null> {
  const path = pathOf(root, key);
  try {
    const stat = await Deno.stat(path);
    return {
      key,
      size: stat.size,
      metadata: await readMetadata(key, path),
      lastModified: stat.mtime ?? undefined,
    };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/**
 * Adds to `found` the objects under `dir` (whose key is `rel`) that start with `prefix`,
 * descending only into folders that can hold such keys; metadata and temporary files are
 * not objects.
 */
async function collectObjects(
  dir: string,
  rel: string,
  prefix: string,
  found: ObjectInfo[],
): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  for (const entry of entries) {
    const key = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      if (key.startsWith(prefix) || prefix.startsWith(key + "/")) {
        await collectObjects(join(dir, entry.name), key, prefix, found);
      }
    } else if (
      entry.isFile && key.startsWith(prefix) && !entry.name.endsWith(metaSuffix) &&
      !entry.name.includes(tempMarker)
    ) {
      const stat = await Deno.stat(join(dir, entry.name));
      found.push({
        key,
        size: stat.size,
        metadata: {},
        lastModified: stat.mtime ?? undefined,
      });
    }
  }
}

/** {@link Storage.list}: the whole listing is gathered first, then yielded in key order. */
async function* listObjects(root: string, prefix: string): AsyncIterable<ObjectInfo> {
  const found: ObjectInfo[] = [];
  await collectObjects(root, "", prefix, found);
  found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  yield* found;
}

/** {@link Storage.delete}: each object with its metadata; missing files are not an error. */
async function deleteObjects(root: string, keys: string[]): Promise<void> {
  for (const key of keys) {
    const path = pathOf(root, key);
    await Deno.remove(path + metaSuffix).catch(() => {});
    await Deno.remove(path).catch(() => {});
  }
}

/** {@link Storage.check}: the root is a readable directory, or does not exist yet. */
async function checkRoot(root: string): Promise<void> {
  try {
    const stat = await Deno.stat(root);
    if (!stat.isDirectory) {
      throw new WalsyncError(
        "storage",
        `${root} is not a directory; give file:// a directory path`,
      );
    }
  } catch (err) {
    if (err instanceof WalsyncError) throw err;
    if (err instanceof Deno.errors.NotFound) return; // created on first write
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new WalsyncError("storage", `permission denied reading ${root}`);
    }
    throw err;
  }
}

/**
 * Opens a directory as storage. The directory is created on first write.
 * @example
 * ```ts
 * const storage = fileStorage("/var/backups/walsync");
 * for await (const info of storage.list("app.db/")) console.log(info.key, info.size);
 * storage.close();
 * ```
 */
export function fileStorage(root: string): Storage & RangeSource {
  const guard = <T>(op: () => Promise<T>): Promise<T> =>
    op().catch((err) => {
      throw refused(root, err);
    });
  return {
    location: `file://${root}`,
    readTagged: (key) => guard(() => readTagged(root, key)),
    createIfAbsent: (key, bytes) => guard(() => createIfAbsent(root, key, bytes)),
    replaceIfMatch: (key, bytes, etag) => guard(() => replaceIfMatch(root, key, bytes, etag)),
    put: (key, body, options) => guard(() => putObject(root, key, body, options)),
    get: (key) => guard(() => getObject(root, key)),
    readRangeInto: (key, start, into, at) => guard(() => readRangeInto(root, key, start, into, at)),
    head: (key) => guard(() => headObject(root, key)),
    list: (prefix) => guardedList(root, prefix),
    delete: (keys) => guard(() => deleteObjects(root, keys)),
    check: () => guard(() => checkRoot(root)),
    close(): void {},
  };
}

/**
 * The file system refusing access to the bucket's directory (permissions, an immutable
 * directory, a read-only mount) as a storage error (exit 3) naming the bucket and the fix;
 * any other error as it is.
 */
function refused(root: string, err: unknown): unknown {
  const reason = err instanceof WalsyncError ? null : accessRefused(err);
  if (reason === null) return err;
  return new WalsyncError(
    "storage",
    `the file:// bucket ${root} refuses access (${reason}); run walsync as a user who may ` +
      `write there, or choose another --bucket`,
  );
}

async function* guardedList(root: string, prefix: string): AsyncIterable<ObjectInfo> {
  try {
    yield* listObjects(root, prefix);
  } catch (err) {
    throw refused(root, err);
  }
}
