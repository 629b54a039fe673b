/**
 * SHA256 on a second thread, for downloads whose buffers are shared (`SharedArrayBuffer`): the
 * main thread reads the next bytes from the socket and hands the last ones to the disk while the
 * worker hashes them in place, with no copy. On this project's 2-core VM, hashing 1 GiB takes
 * 0.64 s of a thread; on the main thread it was the largest part (0.64 of 1.70 s busy) of what
 * held a restore behind the wire (docs/benchmarks.md).
 * @module
 */
import type { HashAnswer, HashRequest } from "./hash_worker.ts";

/** A running SHA256 on another thread. */
export interface ThreadHash {
  /**
   * Adds `bytes` (a view of a `SharedArrayBuffer`) to the hash; resolves once they are hashed.
   * The bytes must not change until then. Updates are hashed in the order they are called.
   */
  update(bytes: Uint8Array): Promise<void>;
  /** The hex digest of everything added (call once, after the last update). */
  digest(): Promise<string>;
  /** Stops the worker; pending calls reject. */
  close(): void;
}

/**
 * Starts a hashing worker; null when workers or shared memory are not available here (a
 * compiled binary without the worker module, say): the caller then hashes on its own thread.
 * @example
 * ```ts
 * const hash = await startThreadHash();
 * if (hash) {
 *   const bytes = new Uint8Array(new SharedArrayBuffer(1024));
 *   await hash.update(bytes);
 *   console.log(await hash.digest());
 *   hash.close();
 * }
 * ```
 */
export async function startThreadHash(): Promise<ThreadHash | null> {
  if (typeof SharedArrayBuffer !== "function") return null;
  let worker: Worker;
  try {
    worker = new Worker(new URL("./hash_worker.ts", import.meta.url).href, { type: "module" });
  } catch {
    return null;
  }
  const waiting: { resolve(answer: HashAnswer): void; reject(err: Error): void }[] = [];
  let failure: Error | null = null;
  const fail = (err: Error): void => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  const ready = new Promise<boolean>((resolve) => {
    worker.onmessage = (event: MessageEvent<HashAnswer>) => {
      if ("ready" in event.data) return resolve(true);
      waiting.shift()?.resolve(event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      resolve(false);
      fail(new Error(`hashing thread failed: ${event.message}`));
    };
  });
  if (!(await ready)) {
    worker.terminate();
    return null;
  }
  const ask = (request: HashRequest): Promise<HashAnswer> => {
    if (failure) return Promise.reject(failure);
    return new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      worker.postMessage(request);
    });
  };
  return {
    async update(bytes) {
      if (!(bytes.buffer instanceof SharedArrayBuffer)) {
        throw new TypeError("a thread hash takes views of a SharedArrayBuffer only");
      }
      await ask({ update: bytes.buffer, offset: bytes.byteOffset, length: bytes.byteLength });
    },
    async digest() {
      const answer = await ask({ digest: true });
      if (!("digest" in answer)) throw new Error("hashing thread answered out of order");
      return answer.digest;
    },
    close() {
      worker.terminate();
      fail(new Error("hashing thread closed"));
    },
  };
}
