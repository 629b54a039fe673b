/**
 * `writeBehind` (src/support/durable.ts): a large file's bytes are flushed while it is being
 * written, one flush at a time, and a flush that fails is reported at the end, never dropped
 * (Linux reports a writeback error to one fsync of a descriptor only).
 * @module
 */
import assert from "node:assert/strict";
import { writeBehind } from "../../src/support/durable.ts";

/** A stand-in for the file: counts `syncData` calls, each settled by the test. */
function fakeFile() {
  const calls: { resolve: () => void; reject: (err: Error) => void }[] = [];
  const file = {
    syncData: () =>
      new Promise<void>((resolve, reject) => {
        calls.push({ resolve, reject });
      }),
  } as unknown as Deno.FsFile;
  return { file, calls };
}

const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("writeBehind: a flush starts once `every` bytes are written, never two at once, and settle waits for it", async () => {
  const { file, calls } = fakeFile();
  const behind = writeBehind(file, 100);
  behind.wrote(60);
  assert.equal(calls.length, 0, "not enough bytes yet");
  behind.wrote(60);
  assert.equal(calls.length, 1, "120 bytes: one flush");
  behind.wrote(500);
  assert.equal(calls.length, 1, "a flush is in flight: no second one");
  let settled = false;
  const settling = behind.settle().then(() => settled = true);
  await turn();
  assert.equal(settled, false, "settle waits for the flush in flight");
  calls[0].resolve();
  await settling;
  behind.wrote(100);
  assert.equal(calls.length, 2, "the next 100 bytes start the next flush");
  calls[1].resolve();
  await behind.settle();
});

Deno.test("writeBehind: a flush that failed (a disk error) is thrown by settle, even after later flushes succeed", async () => {
  const { file, calls } = fakeFile();
  const behind = writeBehind(file, 10);
  behind.wrote(10);
  calls[0].reject(new Error("Input/output error (os error 5)"));
  await turn();
  behind.wrote(10);
  assert.equal(calls.length, 2);
  calls[1].resolve();
  await assert.rejects(() => behind.settle(), /Input\/output error/);
});
