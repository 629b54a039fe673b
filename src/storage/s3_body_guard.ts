/**
 * Upload bodies checked against what the caller promised (size and SHA256) before the last
 * byte reaches the server: streamed through a guard that holds the final chunk back, or, for a
 * small body, read whole and checked before anything is sent.
 * @module
 */
import { integrityError } from "../support/errors.ts";
import { hashingStream, sha256Hex } from "../support/hash.ts";
import type { BodySource, PutOptions } from "./storage.ts";

/** How the bytes that streamed differ from what the caller promised, if they do. */
export interface Mismatch {
  expected: string;
  actual: string;
}

/** Why a guarded body stopped early: it did not match, or the source itself failed. */
export type BodyFailure = { mismatch: Mismatch } | { sourceError: unknown };

/**
 * Opens the body through a hasher and a guard. The guard keeps the latest chunk back and
 * releases it only after the stream has ended with the promised size and digest; on a
 * mismatch it errors the stream instead, so the server never receives a complete (wrong)
 * body. `onFailure` runs on a mismatch or a source error so the caller can abort the
 * request at once (a piped Node request would otherwise wait for bytes that never come).
 */
export function guardedBody(
  body: BodySource,
  options: PutOptions,
  onFailure: () => void,
): {
  stream: ReadableStream<Uint8Array>;
  failure(): BodyFailure | undefined;
  release(): void;
} {
  let failure: BodyFailure | undefined;
  const expected = `${options.sha256} (${options.size} bytes)`;

  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let finished = false;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        reader ??= body().getReader();
        const { done, value } = await reader.read();
        if (done) {
          finished = true;
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        finished = true;
        failure ??= { sourceError: err };
        onFailure();
        controller.error(err);
      }
    },
    cancel(reason) {
      return reader?.cancel(reason);
    },
  }, { highWaterMark: 0 });

  const hashing = hashingStream();
  let held: Uint8Array | undefined;
  let total = 0;
  const mismatch = (actual: string, controller: TransformStreamDefaultController<Uint8Array>) => {
    failure ??= { mismatch: { expected, actual } };
    onFailure();
    controller.error(integrityError("upload", "source changed while uploading", expected, actual));
  };
  const guard = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (chunk.byteLength === 0) return;
      total += chunk.byteLength;
      if (total > options.size) {
        mismatch(`more than ${options.size} bytes`, controller);
        return;
      }
      if (held) controller.enqueue(held);
      held = chunk;
    },
    flush(controller) {
      const digest = hashing.digest();
      if (digest !== options.sha256 || total !== options.size) {
        mismatch(`${digest} (${total} bytes)`, controller);
        return;
      }
      if (held) controller.enqueue(held);
      held = undefined;
    },
  });
  return {
    stream: source.pipeThrough(hashing.stream).pipeThrough(guard),
    failure: () => failure,
    // A failed request may leave the body half read and locked by the SDK; cancelling the
    // source directly closes what it holds open (a file, say).
    release() {
      if (!finished && reader) reader.cancel().catch(() => {});
      finished = true;
    },
  };
}

/** Settles an upload attempt: a mismatch is returned, a source error rethrown as it was. */
export function settle(failure: BodyFailure | undefined): Mismatch | undefined {
  if (failure === undefined) return undefined;
  if ("mismatch" in failure) return failure.mismatch;
  throw failure.sourceError;
}

/**
 * Reads a small body whole and checks it against the promised size and digest before any
 * byte is sent. A source error is thrown as it was; a body that does not match is returned as
 * a mismatch.
 */
export async function readChecked(
  body: BodySource,
  options: PutOptions,
): Promise<{ bytes: Uint8Array } | { mismatch: Mismatch }> {
  const expected = `${options.sha256} (${options.size} bytes)`;
  const reader = body().getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      total += next.value.byteLength;
      if (total > options.size) {
        return { mismatch: { expected, actual: `more than ${options.size} bytes` } };
      }
      if (next.value.byteLength > 0) chunks.push(next.value);
    }
    done = true;
  } finally {
    if (!done) reader.cancel().catch(() => {});
  }
  let bytes: Uint8Array;
  if (chunks.length === 1) bytes = chunks[0];
  else {
    bytes = new Uint8Array(total);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
  }
  const digest = sha256Hex(bytes);
  if (digest !== options.sha256 || total !== options.size) {
    return { mismatch: { expected, actual: `${digest} (${total} bytes)` } };
  }
  return { bytes };
}
