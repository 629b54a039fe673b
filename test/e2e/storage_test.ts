/**
 * The Storage contract, run against both backends (a local directory and S3 on MinIO),
 * plus what only S3 has: multipart uploads, metadata as other S3 clients see it, and the
 * one-line errors for wrong credentials, missing buckets and unreachable endpoints.
 * @module
 */
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import nodeAssert from "node:assert/strict";
import { type MinioServer, sharedMinio, startMinio } from "../support/minio.ts";
import { WalsyncError } from "../../src/support/errors.ts";
import { sha256Hex } from "../../src/support/hash.ts";
import type { BodySource, ObjectInfo, Storage } from "../../src/storage/storage.ts";
import { fileStorage } from "../../src/storage/file.ts";
import { s3Storage, singlePutLimit } from "../../src/storage/s3.ts";
import { createHash } from "node:crypto";

function assert(condition: unknown, message?: string): asserts condition {
  nodeAssert.ok(condition, message);
}

function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Awaits a rejection and returns the error, checking its class when one is given. */
async function assertRejects<E = unknown>(
  fn: () => Promise<unknown>,
  errorClass?: new (...args: any[]) => E,
): Promise<E> {
  try {
    await fn();
  } catch (err) {
    if (errorClass) {
      assert(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    }
    return err as E;
  }
  throw new Error("expected a rejection, but it resolved");
}

// The SDK keeps sockets and timers alive between calls; tests that touch S3 opt out of
// Deno's per-test op and resource sanitizers (the shared server also outlives each test).
const s3TestOptions = { sanitizeOps: false, sanitizeResources: false } as const;

/** A backend under test: opens a fresh, empty storage and cleans it up afterwards. */
interface Backend {
  name: "file" | "s3";
  open(): Promise<{ storage: Storage; done(): Promise<void> }>;
}

/** Sets environment variables for the duration of a test; returns the undo. */
function setEnv(vars: Record<string, string | undefined>): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(vars)) {
    saved[name] = Deno.env.get(name);
    if (value === undefined) Deno.env.delete(name);
    else Deno.env.set(name, value);
  }
  return () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  };
}

const fileBackend: Backend = {
  name: "file",
  async open() {
    const dir = await Deno.makeTempDir({ prefix: "walsync-storage-test-" });
    const storage = fileStorage(dir);
    return {
      storage,
      async done() {
        storage.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
};

/** Each S3 storage gets its own prefix under `some/prefix/` so tests never see each other. */
function s3Prefix(): string {
  return `some/prefix/${crypto.randomUUID().slice(0, 8)}`;
}

function openS3(
  server: MinioServer,
  prefix = s3Prefix(),
): { storage: Storage; done(): Promise<void> } {
  const undo = setEnv(server.env);
  const storage = s3Storage({ bucket: server.bucket, prefix });
  return {
    storage,
    done() {
      storage.close();
      undo();
      return Promise.resolve();
    },
  };
}

const s3Backend: Backend = {
  name: "s3",
  async open() {
    return openS3(await sharedMinio());
  },
};

/** A body made of `bytes`, delivered in chunks of `chunk` bytes (odd sizes catch edge cases). */
function bodyOf(bytes: Uint8Array, chunk = 7919): BodySource {
  return () => {
    let offset = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= bytes.length) {
          controller.close();
          return;
        }
        const end = Math.min(bytes.length, offset + chunk);
        // A copy, so a consumer that keeps chunks never aliases the test's buffer.
        controller.enqueue(bytes.slice(offset, end));
        offset = end;
      },
    });
  };
}

/** 256 × 257 bytes in which every byte value appears at every offset modulo 256. */
function everyByteAtEveryOffset(): Uint8Array {
  const bytes = new Uint8Array(256 * 257);
  for (let block = 0; block < 257; block++) {
    for (let i = 0; i < 256; i++) bytes[block * 256 + i] = (i + block) & 0xff;
  }
  return bytes;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Uploads bytes the way Walsync does: size, digest and metadata that carries the digest. */
async function putBytes(
  storage: Storage,
  key: string,
  bytes: Uint8Array,
  extra: Record<string, string> = {},
): Promise<string> {
  const sha256 = sha256Hex(bytes);
  await storage.put(key, bodyOf(bytes), {
    size: bytes.length,
    sha256,
    metadata: { ...extra, sha256 },
  });
  return sha256;
}

async function keysOf(objects: AsyncIterable<ObjectInfo>): Promise<string[]> {
  return (await Array.fromAsync(objects)).map((o) => o.key);
}

async function assertStorageError(
  promise: Promise<unknown>,
  pattern: RegExp,
): Promise<WalsyncError> {
  const err = await assertRejects(() => promise, WalsyncError);
  assertEquals(err.kind, "storage", err.message);
  assert(
    pattern.test(err.message),
    `message ${JSON.stringify(err.message)} should match ${pattern}`,
  );
  assert(!err.message.includes("\n"), "storage errors are one line");
  return err;
}

function contract(backend: Backend): void {
  const name = backend.name;
  const options = name === "s3" ? s3TestOptions : {};
  const test = (title: string, fn: (storage: Storage) => Promise<void>): void => {
    Deno.test({
      name: `${name}: ${title}`,
      ...options,
      async fn() {
        const { storage, done } = await backend.open();
        try {
          await fn(storage);
        } finally {
          await done();
        }
      },
    });
  };

  test("put then get returns every byte value at every offset, unchanged", async (storage) => {
    const bytes = everyByteAtEveryOffset();
    await putBytes(storage, "db/snapshots/0001", bytes);
    const { body, info } = await storage.get("db/snapshots/0001");
    const back = await readAll(body);
    assertEquals(info.key, "db/snapshots/0001");
    assertEquals(info.size, bytes.length);
    assertEquals(back.length, bytes.length);
    assert(back.every((b, i) => b === bytes[i]), "bytes differ");
  });

  test("an empty object round-trips", async (storage) => {
    await putBytes(storage, "empty", new Uint8Array(0));
    const { body, info } = await storage.get("empty");
    assertEquals(info.size, 0);
    assertEquals((await readAll(body)).length, 0);
  });

  test("metadata comes back from get and head with lower-case keys", async (storage) => {
    const sha256 = await putBytes(storage, "meta", new TextEncoder().encode("hello"), {
      "walsync-kind": "snapshot",
      "walsync-generation": "0000000000000001",
    });
    const expected = {
      sha256,
      "walsync-kind": "snapshot",
      "walsync-generation": "0000000000000001",
    };
    const got = await storage.get("meta");
    await got.body.cancel();
    assertEquals(got.info.metadata, expected);
    const head = await storage.head("meta");
    assertEquals(head?.metadata, expected);
    assertEquals(head?.size, 5);
    assert(head?.lastModified instanceof Date, "head gives lastModified");
  });

  test("put replaces an existing object and its metadata", async (storage) => {
    await putBytes(storage, "k", new TextEncoder().encode("first"), { note: "one" });
    const sha256 = await putBytes(storage, "k", new TextEncoder().encode("second!"));
    const { body, info } = await storage.get("k");
    assertEquals(new TextDecoder().decode(await readAll(body)), "second!");
    assertEquals(info.metadata, { sha256 });
  });

  test("createIfAbsent writes once and refuses when the key exists", async (storage) => {
    const first = await storage.createIfAbsent("db/lease", new TextEncoder().encode("one"));
    assert(first.written, "first create writes");
    const second = await storage.createIfAbsent("db/lease", new TextEncoder().encode("two"));
    assertEquals(second.written, false);
    const got = await storage.readTagged("db/lease");
    assertEquals(new TextDecoder().decode(got!.bytes), "one");
    assertEquals(got!.etag, first.etag);
    assert(got!.lastModified instanceof Date, "readTagged gives lastModified");
  });

  test("replaceIfMatch replaces only the version it was given", async (storage) => {
    const created = await storage.createIfAbsent("db/head", new TextEncoder().encode("v1"));
    assert(created.written);
    const v2 = await storage.replaceIfMatch(
      "db/head",
      new TextEncoder().encode("v2"),
      created.etag,
    );
    assert(v2.written, "replace with the current token writes");
    // A stale writer still holding the first token cannot move the object back.
    const stale = await storage.replaceIfMatch(
      "db/head",
      new TextEncoder().encode("v1 again"),
      created.etag,
    );
    assertEquals(stale.written, false);
    assertEquals(new TextDecoder().decode((await storage.readTagged("db/head"))!.bytes), "v2");
    const missing = await storage.replaceIfMatch("db/none", new TextEncoder().encode("x"), v2.etag);
    assertEquals(missing.written, false);
    assertEquals(await storage.readTagged("db/none"), null);
  });

  test("concurrent createIfAbsent: exactly one wins", async (storage) => {
    const results = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => storage.createIfAbsent("race/lease", new TextEncoder().encode(`writer ${i}`)),
      ),
    );
    assertEquals(results.filter((r) => r.written).length, 1);
  });

  test("conditional objects are not listed as layout objects' neighbours", async (storage) => {
    await storage.createIfAbsent("db/head", new TextEncoder().encode("h"));
    const etag = (await storage.readTagged("db/head"))!.etag;
    await storage.replaceIfMatch("db/head", new TextEncoder().encode("h2"), etag);
    assertEquals(await keysOf(storage.list("db/")), ["db/head"]);
  });

  test("head of a missing key is null", async (storage) => {
    assertEquals(await storage.head("nothing/here"), null);
  });

  test("get of a missing key is an integrity error naming the key", async (storage) => {
    const err = await assertRejects(() => storage.get("nothing/here"), WalsyncError);
    assertEquals(err.kind, "integrity");
    assertEquals(err.exitCode, 5);
    assert(err.message.includes("nothing/here"), err.message);
  });

  test("list returns the keys under a prefix, sorted, relative to the storage root", async (storage) => {
    const bytes = new TextEncoder().encode("x");
    for (const key of ["seg/b", "seg/a", "seg/c/d", "segment", "snap/1", "a"]) {
      await putBytes(storage, key, bytes);
    }
    assertEquals(await keysOf(storage.list("seg/")), ["seg/a", "seg/b", "seg/c/d"]);
    assertEquals(await keysOf(storage.list("seg")), ["seg/a", "seg/b", "seg/c/d", "segment"]);
    assertEquals(await keysOf(storage.list("")), [
      "a",
      "seg/a",
      "seg/b",
      "seg/c/d",
      "segment",
      "snap/1",
    ]);
    assertEquals(await keysOf(storage.list("nope/")), []);
    const [first] = await Array.fromAsync(storage.list("seg/a"));
    assertEquals(first.size, 1);
    assertEquals(first.metadata, {});
  });

  test("delete removes objects, and missing keys are not an error", async (storage) => {
    const bytes = new TextEncoder().encode("x");
    await putBytes(storage, "d/1", bytes);
    await putBytes(storage, "d/2", bytes);
    await putBytes(storage, "d/3", bytes);
    await storage.delete(["d/1", "d/3", "d/never-existed"]);
    assertEquals(await keysOf(storage.list("d/")), ["d/2"]);
    assertEquals(await storage.head("d/1"), null);
    await storage.delete([]);
  });

  test("a body that does not match its promised sha256 is rejected and leaves no object", async (storage) => {
    const bytes = everyByteAtEveryOffset();
    const promised = sha256Hex(bytes);
    const changed = bytes.slice();
    changed[1000] ^= 0x01;
    const err = await assertRejects(
      () =>
        storage.put("bad", bodyOf(changed), {
          size: bytes.length,
          sha256: promised,
          metadata: { sha256: promised },
        }),
      WalsyncError,
    );
    assertEquals(err.kind, "integrity");
    assert(err.message.includes("bad"), err.message);
    assertEquals(err.detail?.actual, `${sha256Hex(changed)} (${bytes.length} bytes)`);
    assertEquals(await storage.head("bad"), null);
    assertEquals(await keysOf(storage.list("")), []);
  });

  test("a body shorter or longer than its promised size is rejected and leaves no object", async (storage) => {
    const bytes = everyByteAtEveryOffset();
    const sha256 = sha256Hex(bytes);
    for (const body of [bytes.subarray(0, bytes.length - 1), new Uint8Array([...bytes, 0])]) {
      const err = await assertRejects(
        () =>
          storage.put("sized", bodyOf(body), { size: bytes.length, sha256, metadata: { sha256 } }),
        WalsyncError,
      );
      assertEquals(err.kind, "integrity");
      assertEquals(await storage.head("sized"), null);
    }
  });

  test("a body stream that fails part-way rejects put with that error and leaves no object", async (storage) => {
    const boom = new Error("disk went away");
    const failing: BodySource = () => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 3) {
            controller.error(boom);
            return;
          }
          sent++;
          controller.enqueue(new Uint8Array(1000).fill(sent));
        },
      });
    };
    const sha256 = "0".repeat(64);
    const err = await assertRejects(() =>
      storage.put("partial", failing, { size: 10_000, sha256, metadata: { sha256 } })
    );
    assertEquals(err, boom);
    assertEquals(await storage.head("partial"), null);
  });

  test("check passes on a reachable storage", async (storage) => {
    await storage.check();
  });

  test("location names where the objects are", (storage) => {
    assert(
      storage.location.startsWith(name === "s3" ? "s3://walsync-test/some/prefix/" : "file://"),
    );
    return Promise.resolve();
  });
}

contract(fileBackend);
contract(s3Backend);

// ---------------------------------------------------------------------------------------
// S3 only

/** A generated body of `size` bytes that is never held in memory whole. */
function generated(size: number): BodySource {
  return () => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) {
          controller.close();
          return;
        }
        const n = Math.min(1 << 20, size - sent);
        const chunk = new Uint8Array(n);
        for (let i = 0; i < n; i += 511) chunk[i] = ((sent + i) * 2654435761) >>> 24;
        sent += n;
        controller.enqueue(chunk);
      },
    });
  };
}

async function streamDigest(
  stream: ReadableStream<Uint8Array>,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest("hex"), size };
}

/** A plain SDK client for the server, independent of src/storage/s3*.ts. */
function plainClient(server: MinioServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
  });
}

Deno.test({
  name: "s3: a body over 64 MiB goes up as multipart and comes back byte for byte",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const prefix = s3Prefix();
    const { storage, done } = openS3(server, prefix);
    const client = plainClient(server);
    try {
      const size = 70 * 1024 * 1024 + 12345;
      assert(size > singlePutLimit);
      const { sha256 } = await streamDigest(generated(size)());
      await storage.put("big", generated(size), { size, sha256, metadata: { sha256 } });

      const { body, info } = await storage.get("big");
      assertEquals(info.size, size);
      assertEquals(info.metadata.sha256, sha256);
      assertEquals(await streamDigest(body), { sha256, size });

      // A multipart ETag ends in "-<parts>": 70 MiB in 16 MiB parts is 5 parts.
      const head = await client.send(
        new HeadObjectCommand({ Bucket: server.bucket, Key: `${prefix}/big` }),
      );
      assert(/-5"?$/.test(head.ETag ?? ""), `ETag ${head.ETag} should be a 5-part multipart ETag`);
    } finally {
      client.destroy();
      await done();
    }
  },
});

Deno.test({
  name: "s3: a multipart body that does not match its sha256 is rejected and leaves no object",
  ...s3TestOptions,
  async fn() {
    const { storage, done } = openS3(await sharedMinio());
    try {
      const size = singlePutLimit + 1;
      const promised = "f".repeat(64);
      const err = await assertRejects(
        () =>
          storage.put("big-bad", generated(size), {
            size,
            sha256: promised,
            metadata: { sha256: promised },
          }),
        WalsyncError,
      );
      assertEquals(err.kind, "integrity");
      assertEquals(await storage.head("big-bad"), null);
    } finally {
      await done();
    }
  },
});

Deno.test({
  name: "s3: a plain S3 client sees metadata sha256 equal to the SHA256 of the stored bytes",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const prefix = s3Prefix();
    const { storage, done } = openS3(server, prefix);
    const client = plainClient(server);
    try {
      await putBytes(storage, "plain", everyByteAtEveryOffset());
      const out = await client.send(
        new GetObjectCommand({ Bucket: server.bucket, Key: `${prefix}/plain` }),
      );
      const bytes = await out.Body!.transformToByteArray();
      assertEquals(bytes.length, 256 * 257);
      assertEquals(out.Metadata?.sha256, sha256Hex(bytes));
    } finally {
      client.destroy();
      await done();
    }
  },
});

Deno.test({
  name: "s3: list pages past 1000 keys and delete works in batches of 1000",
  ...s3TestOptions,
  async fn() {
    const { storage, done } = openS3(await sharedMinio());
    try {
      const keys = Array.from({ length: 1003 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      const bytes = new Uint8Array([1]);
      for (let i = 0; i < keys.length; i += 32) {
        await Promise.all(keys.slice(i, i + 32).map((key) => putBytes(storage, key, bytes)));
      }
      assertEquals(await keysOf(storage.list("many/")), keys);
      await storage.delete(keys);
      assertEquals(await keysOf(storage.list("many/")), []);
    } finally {
      await done();
    }
  },
});

Deno.test({
  name: "s3: location names bucket, prefix and endpoint, never the credentials",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const { storage, done } = openS3(server, "some/prefix");
    try {
      assertEquals(storage.location, `s3://walsync-test/some/prefix at ${server.endpoint}`);
      assert(!storage.location.includes(server.secretKey));
      assert(!storage.location.includes(server.accessKey));
    } finally {
      await done();
    }
  },
});

Deno.test({
  name: "s3: a wrong secret key is reported as access denied, without the secret",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const wrongSecret = `wrong-${crypto.randomUUID()}`;
    const undo = setEnv({ ...server.env, AWS_SECRET_ACCESS_KEY: wrongSecret });
    const storage = s3Storage({ bucket: server.bucket, prefix: "" });
    try {
      const operations: (() => Promise<unknown>)[] = [
        () => storage.check(),
        () => storage.head("x"),
        () => storage.get("x"),
        () => keysOf(storage.list("")),
        () => putBytes(storage, "x", new Uint8Array([1, 2, 3])),
        () => storage.delete(["x"]),
      ];
      for (const operation of operations) {
        const err = await assertStorageError(
          operation(),
          /^access denied by http:\/\/127\.0\.0\.1:\d+.*AWS_SECRET_ACCESS_KEY/,
        );
        assertEquals(err.exitCode, 3);
        assert(!err.message.includes(wrongSecret), "the secret must not appear");
        assert(!err.message.includes(server.secretKey), "the real secret must not appear");
      }
    } finally {
      storage.close();
      undo();
    }
  },
});

Deno.test({
  name: "s3: an unknown access key is reported as access denied",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const undo = setEnv({ ...server.env, AWS_ACCESS_KEY_ID: "nobody-at-all" });
    const storage = s3Storage({ bucket: server.bucket, prefix: "" });
    try {
      await assertStorageError(keysOf(storage.list("")), /^access denied by .*AWS_ACCESS_KEY_ID/);
    } finally {
      storage.close();
      undo();
    }
  },
});

Deno.test({
  name: "s3: a missing bucket is reported by name, with the fix",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const undo = setEnv(server.env);
    const storage = s3Storage({ bucket: "no-such-bucket-here", prefix: "p" });
    try {
      const pattern =
        /^bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+; create it or fix --bucket$/;
      await assertStorageError(storage.check(), pattern);
      await assertStorageError(keysOf(storage.list("")), pattern);
      await assertStorageError(putBytes(storage, "k", new Uint8Array([1])), pattern);
    } finally {
      storage.close();
      undo();
    }
  },
});

Deno.test({
  name: "s3: a put the server refuses leaves the body closed, not half read and open",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const undo = setEnv(server.env);
    const storage = s3Storage({ bucket: "no-such-bucket-here", prefix: "" });
    for (const size of [8 * 1024 * 1024, singlePutLimit + 1]) {
      let state = "open";
      const inner = generated(size);
      const tracked: BodySource = () => {
        const reader = inner().getReader();
        return new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) {
              state = "read to the end";
              controller.close();
            } else controller.enqueue(value);
          },
          cancel() {
            state = "cancelled";
          },
        }, { highWaterMark: 0 });
      };
      try {
        await assertStorageError(
          storage.put("k", tracked, { size, sha256: "0".repeat(64), metadata: {} }),
          /^bucket "no-such-bucket-here" does not exist/,
        );
        // Cancellation is asynchronous; give it a moment.
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert(state !== "open", `body of ${size} bytes was left open`);
      } finally {
        if (size > singlePutLimit) {
          storage.close();
          undo();
        }
      }
    }
  },
});

Deno.test({
  name: "s3: an endpoint with nothing listening is reported as unreachable within 15 s",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    // Bind and release a port so nothing listens on it.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const undo = setEnv(server.env);
    const storage = s3Storage({
      bucket: server.bucket,
      prefix: "",
      endpoint: `http://127.0.0.1:${port}`,
    });
    const started = Date.now();
    try {
      await assertStorageError(
        storage.check(),
        new RegExp(
          `^cannot reach http://127\\.0\\.0\\.1:${port}: connection refused; check --endpoint`,
        ),
      );
      assert(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    } finally {
      storage.close();
      undo();
    }
  },
});

Deno.test({
  name: "s3: no credentials anywhere is reported as such",
  ...s3TestOptions,
  async fn() {
    const server = await sharedMinio();
    const nowhere = await Deno.makeTempDir();
    // Every source in the SDK's default chain is emptied, and the EC2 metadata service is
    // switched off so the chain ends here instead of calling out to the network.
    const undo = setEnv({
      ...server.env,
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_CONFIG_FILE: `${nowhere}/config`,
      AWS_SHARED_CREDENTIALS_FILE: `${nowhere}/credentials`,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_EC2_METADATA_DISABLED: "true",
    });
    const storage = s3Storage({ bucket: server.bucket, prefix: "" });
    try {
      await assertStorageError(
        storage.check(),
        /^no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE$/,
      );
    } finally {
      storage.close();
      undo();
      await Deno.remove(nowhere, { recursive: true });
    }
  },
});

Deno.test({
  name: "s3: a server that goes away is unreachable, and the objects are back after it resumes",
  ...s3TestOptions,
  async fn() {
    const server = await startMinio();
    const { storage, done } = openS3(server);
    try {
      const sha256 = await putBytes(storage, "kept", new TextEncoder().encode("still here"));
      await server.pause();
      await assertStorageError(storage.head("kept"), /^cannot reach /);
      await server.resume();
      assertEquals((await storage.head("kept"))?.metadata, { sha256 });
    } finally {
      await done();
      await server.stop();
    }
  },
});
