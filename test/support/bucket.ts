/**
 * Test buckets: a fresh `file://` directory or a fresh prefix on MinIO, named the way the CLI
 * takes them, with raw access to the stored objects that goes around Walsync's own storage code.
 * @module
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { openBucket } from "../../src/storage/bucket.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { type MinioServer, sharedMinio } from "./minio.ts";
import { scratchDir } from "./files.ts";
import { type DamageProxy, startDamageProxy } from "./damage_proxy.ts";

/** A raw object: its bytes and metadata. */
export interface RawObject {
  bytes: Uint8Array;
  metadata: Record<string, string>;
}

/** A bucket as the tests see it: how to name it on the command line, and raw access to its objects. */
export interface TestBucket {
  /** Backend name, for test titles. */
  kind: "file" | "s3";
  /** What to pass to `--bucket`. */
  arg: string;
  /** Environment for the CLI (S3 credentials and endpoint). */
  env: Record<string, string>;
  /** Keys under the bucket's prefix, sorted. */
  keys(): Promise<string[]>;
  /** Reads an object's bytes and metadata directly (no Walsync code). */
  read(key: string): Promise<RawObject>;
  /** Writes an object's bytes and metadata directly (no Walsync code). */
  write(key: string, object: RawObject): Promise<void>;
}

/** A fresh `file://` bucket in a temporary directory. */
export async function fileBucket(): Promise<TestBucket & { dir: string }> {
  const dir = await scratchDir("walsync-bucket-");
  const keys = async (): Promise<string[]> => {
    const found: string[] = [];
    const walk = async (path: string, rel: string) => {
      for await (const entry of Deno.readDir(path)) {
        const key = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory) await walk(join(path, entry.name), key);
        else if (!entry.name.endsWith(".meta.json")) found.push(key);
      }
    };
    await walk(dir, "").catch(() => {});
    return found.sort();
  };
  return {
    kind: "file",
    dir,
    arg: `file://${dir}`,
    env: {},
    keys,
    async read(key) {
      const bytes = await Deno.readFile(join(dir, key));
      let metadata: Record<string, string> = {};
      try {
        metadata = JSON.parse(await Deno.readTextFile(join(dir, key + ".meta.json")));
      } catch { /* no metadata */ }
      return { bytes, metadata };
    },
    async write(key, object) {
      await Deno.writeFile(join(dir, key), object.bytes);
      if (Object.keys(object.metadata).length === 0) {
        await Deno.remove(join(dir, key + ".meta.json")).catch(() => {});
      } else {
        await Deno.writeTextFile(join(dir, key + ".meta.json"), JSON.stringify(object.metadata));
      }
    },
  };
}

/** A fresh prefix in the shared MinIO server's bucket, and a plain SDK client to reach it. */
export async function s3Bucket(): Promise<S3TestBucket> {
  return s3BucketOn(await sharedMinio());
}

/** A bucket reached through a damaging proxy, and the same bucket reached directly. */
export interface ProxiedBucket {
  proxy: DamageProxy;
  /** Through the proxy: what the Walsync under test is given. */
  via: S3TestBucket;
  /** Straight to MinIO (for setting up, checking, and tampering with stored objects). */
  direct: S3TestBucket;
}

/** A fresh prefix in the shared MinIO's bucket, with a new damage proxy in front; stop the proxy after. */
export async function proxiedBucket(): Promise<ProxiedBucket> {
  const server = await sharedMinio();
  const proxy = startDamageProxy(server.endpoint);
  const direct = s3BucketOn(server);
  const via = { ...direct, env: { ...direct.env, AWS_ENDPOINT_URL_S3: proxy.endpoint } };
  return { proxy, via, direct };
}

/** A test bucket on S3, with the plain SDK client that reaches it. */
export type S3TestBucket = TestBucket & { client: S3Client; bucket: string; prefix: string };

/** A fresh prefix in the bucket of `server` (a private one a test may pause, or the shared one). */
export function s3BucketOn(server: MinioServer): S3TestBucket {
  const prefix = `t-${crypto.randomUUID().slice(0, 8)}`;
  const client = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const bucket = server.bucket;
  return {
    kind: "s3",
    client,
    bucket,
    prefix,
    arg: `s3://${bucket}/${prefix}`,
    env: server.env,
    async keys() {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: `${prefix}/`,
            ContinuationToken: token,
          }),
        );
        for (const o of page.Contents ?? []) keys.push(o.Key!.slice(prefix.length + 1));
        token = page.NextContinuationToken;
      } while (token);
      return keys.sort();
    },
    async read(key) {
      const got = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}` }),
      );
      return { bytes: await got.Body!.transformToByteArray(), metadata: got.Metadata ?? {} };
    },
    async write(key, object) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}` }));
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}/${key}`,
          Body: object.bytes,
          Metadata: object.metadata,
        }),
      );
    },
  };
}

/** Walsync's own storage for a test bucket, for tests that run Walsync code in process. */
export function storageOf(bucket: Pick<TestBucket, "arg" | "env">): Promise<Storage> {
  return openBucket(bucket.arg, {
    endpoint: bucket.env.AWS_ENDPOINT_URL_S3,
    credentials: bucket.env.AWS_ACCESS_KEY_ID
      ? {
        accessKeyId: bucket.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: bucket.env.AWS_SECRET_ACCESS_KEY,
      }
      : undefined,
  });
}

/** Both backends, for tests that must hold on each. */
export const backends: { name: "file" | "s3"; make: () => Promise<TestBucket> }[] = [
  { name: "file", make: fileBucket },
  { name: "s3", make: s3Bucket },
];

/** SHA256 hex of bytes, computed here, independently of `src/support/hash.ts`. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What the CLI needs to reach a bucket. */
export type BucketArg = Pick<TestBucket, "arg" | "env">;

/** Test options for tests that use the AWS SDK (it keeps sockets and timers alive). */
export const sdkTest = { sanitizeOps: false, sanitizeResources: false };
