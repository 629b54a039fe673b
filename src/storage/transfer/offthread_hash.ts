/**
 * SHA256 on a worker thread, so that a large download's hashing runs beside its receiving
 * and writing instead of after them on the main thread. Each buffer is transferred to the
 * worker and back (no copy): the caller gets it back once its bytes are in the digest.
 *
 * The worker is built from a Blob of its own source, so a `deno compile`d binary needs no
 * extra module included.
 * @module
 */

const workerSource = `
import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.onmessage = (event) => {
  const m = event.data;
  if (m.digest) {
    self.postMessage({ digest: hash.digest("hex") });
    return;
  }
  hash.update(new Uint8Array(m.buffer, m.offset, m.length));
  self.postMessage({ buffer: m.buffer, offset: m.offset, length: m.length }, [m.buffer]);
};
`;

/** A running SHA256 on a worker thread. */
export interface OffThreadHash {
  /**
   * Adds `bytes` to the digest. Its buffer is transferred away (detached here) and comes back
   * as the resolved array, with the same offset and length, once hashed. Updates are taken in
   * call order.
   */
  update(bytes: Uint8Array): Promise<Uint8Array>;
  /** Hex digest of everything added; call once, after the last update. */
  digest(): Promise<string>;
  /** Stops the worker (pending updates reject). Idempotent. */
  close(): void;
}

interface Reply {
  buffer?: ArrayBuffer;
  offset?: number;
  length?: number;
  digest?: string;
}

/**
 * Starts a hashing worker.
 *
 * @example
 * ```ts
 * const hasher = createOffThreadHash();
 * try {
 *   const back = await hasher.update(chunk); // chunk's buffer is usable again as `back`
 *   console.log(await hasher.digest());
 * } finally {
 *   hasher.close();
 * }
 * ```
 */
export function createOffThreadHash(): OffThreadHash {
  const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
  const worker = new Worker(url, { type: "module" });
  const waiting: { resolve(reply: Reply): void; reject(err: unknown): void }[] = [];
  let failure: unknown;
  let closed = false;
  const fail = (err: unknown) => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  worker.onmessage = (event: MessageEvent<Reply>) => waiting.shift()?.resolve(event.data);
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    fail(new Error(`hashing worker failed: ${event.message}`));
  };
  const ask = (message: unknown, transfer: Transferable[]): Promise<Reply> => {
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<Reply>((resolve, reject) => {
      waiting.push({ resolve, reject });
      worker.postMessage(message, transfer);
    });
  };
  return {
    async update(bytes) {
      const buffer = bytes.buffer as ArrayBuffer;
      const reply = await ask(
        { buffer, offset: bytes.byteOffset, length: bytes.byteLength },
        [buffer],
      );
      return new Uint8Array(reply.buffer!, reply.offset!, reply.length!);
    },
    async digest() {
      return (await ask({ digest: true }, [])).digest!;
    },
    close() {
      if (closed) return;
      closed = true;
      worker.terminate();
      URL.revokeObjectURL(url);
      fail(new Error("hashing worker stopped"));
    },
  };
}
