/**
 * Listing and deleting objects in an S3 bucket: a listing pages through `ListObjectsV2`,
 * deletes go in batches of 1000 keys (the most one `DeleteObjects` takes).
 * @module
 */
import { DeleteObjectsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { errorContext, fullKey, type S3Bucket } from "./s3_client.ts";
import { toStorageError } from "./s3_errors.ts";
import type { ObjectInfo } from "./storage.ts";

/**
 * Every object whose key starts with `listPrefix`, in key order, keys relative to the prefix
 * of the storage; `metadata` is empty.
 */
export async function* listObjects(s3: S3Bucket, listPrefix: string): AsyncIterable<ObjectInfo> {
  const { base } = s3;
  let token: string | undefined;
  do {
    let out;
    try {
      out = await s3.client.send(
        new ListObjectsV2Command({
          Bucket: s3.bucket,
          Prefix: base + listPrefix,
          ContinuationToken: token,
        }),
      );
    } catch (err) {
      throw toStorageError(err, errorContext(s3, `list "${listPrefix}"`));
    }
    for (const object of out.Contents ?? []) {
      if (object.Key === undefined || !object.Key.startsWith(base)) continue;
      yield {
        key: object.Key.slice(base.length),
        size: object.Size ?? 0,
        metadata: {},
        lastModified: object.LastModified,
      };
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
}

/** Deletes objects, 1000 per request; missing keys are not an error, refused ones are. */
export async function deleteKeys(s3: S3Bucket, keys: string[]): Promise<void> {
  const { base } = s3;
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    let out;
    try {
      out = await s3.client.send(
        new DeleteObjectsCommand({
          Bucket: s3.bucket,
          Delete: { Objects: batch.map((key) => ({ Key: fullKey(s3, key) })), Quiet: true },
        }),
      );
    } catch (err) {
      throw toStorageError(err, errorContext(s3, `delete of ${batch.length} objects`));
    }
    const failed = out.Errors?.[0];
    if (failed) {
      const key = failed.Key?.startsWith(base) ? failed.Key.slice(base.length) : failed.Key;
      throw toStorageError(
        { name: failed.Code, $metadata: {} },
        errorContext(s3, `delete "${key}" (and ${out.Errors!.length - 1} more)`),
      );
    }
  }
}
