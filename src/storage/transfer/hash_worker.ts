/**
 * The worker behind `hash_thread.ts`: keeps one SHA256 and adds to it the bytes of shared
 * buffers it is pointed at, in the order the messages arrive. It answers each update once the
 * bytes are hashed (the sender may then reuse the buffer), and a digest request with the hex
 * digest. It never copies the bytes: the sender must not change them until the answer.
 * @module
 */
import { createHash } from "node:crypto";

/** A message to the worker: hash these bytes, or give the digest. */
export type HashRequest =
  | { update: SharedArrayBuffer; offset: number; length: number }
  | { digest: true };

/** The worker's answer, in the order of the requests. */
export type HashAnswer = { hashed: number } | { digest: string } | { ready: true };

const scope = self as unknown as {
  postMessage(answer: HashAnswer): void;
  onmessage: ((event: MessageEvent<HashRequest>) => void) | null;
};
const hash = createHash("sha256");

scope.onmessage = (event) => {
  const request = event.data;
  if ("digest" in request) {
    scope.postMessage({ digest: hash.digest("hex") });
    return;
  }
  hash.update(new Uint8Array(request.update, request.offset, request.length));
  scope.postMessage({ hashed: request.length });
};
scope.postMessage({ ready: true });
