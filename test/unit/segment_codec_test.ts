/**
 * Compressed WAL segments in process (src/history/segment.ts: encodeSegment, segmentBodyOf,
 * decodeSegment): zstd with a content checksum, the declared decoded size, and every kind of
 * damaged or mis-sized body an integrity error naming the key. Restore, verify and replicate
 * reading such segments are tested end to end in `test/e2e/segment_test.ts`.
 */
import assert from "node:assert/strict";
import { constants as zlibConstants, zstdCompressSync } from "node:zlib";
import { WalsyncError } from "../../src/support/errors.ts";
import {
  decodeSegment,
  encodeSegment,
  type SegmentBody,
  segmentBodyOf,
} from "../../src/history/segment.ts";
import type { SegmentInfo } from "../../src/format/wal.ts";

/** Asserts `fn` throws an integrity error naming `key` whose message matches `pattern`. */
function assertIntegrity(fn: () => unknown, key: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WalsyncError, `expected WalsyncError, got ${error}`);
    assert.equal(error.kind, "integrity");
    assert.equal(error.exitCode, 5);
    assert.ok(error.message.startsWith(`${key}: `), error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Mulberry32: a tiny seeded PRNG, so the fuzz test is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const key =
  "app.db/generations/20260101T000000000Z-00000000/wal/0000000000000002-0000000000000002.wal";

/** A SegmentInfo for `frames` frames of 1024-byte pages (only the sizes matter to decoding). */
function infoOf(frames: number): SegmentInfo {
  return {
    pageSize: 1024,
    salt1: 1,
    salt2: 2,
    bigEndian: false,
    checksumStart: [0, 0],
    checksumEnd: [0, 0],
    frameCount: frames,
    commits: 1,
    commitSize: 1,
  };
}

/** Raw "frames": every byte value 0x00-0xFF, in order and shuffled, `frames` × 1048 bytes. */
function allByteFrames(frames: number, seed = 1): Uint8Array {
  const random = mulberry32(seed);
  const bytes = new Uint8Array(frames * (24 + 1024));
  for (let i = 0; i < bytes.length; i++) bytes[i] = i < bytes.length / 2 ? i % 256 : random() * 256;
  return bytes;
}

// ---------------------------------------------------------------------------------------
// Encoding and decoding

Deno.test("encodeSegment: zstd level 1 with a content checksum; every byte value 0x00-0xFF round-trips", () => {
  const raw = allByteFrames(6);
  assert.equal(new Set(raw).size, 256);
  const { body, metadata } = encodeSegment(raw);
  assert.deepEqual(metadata, {
    "walsync-encoding": "zstd",
    "walsync-decoded-size": String(raw.byteLength),
  });
  assert.ok(body instanceof Uint8Array);
  assert.ok(body.byteLength < raw.byteLength, "the ordered half compresses");
  assert.deepEqual([...body.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
  assert.equal(body[4] & 0x04, 0x04, "content checksum flag");
  const parsed = segmentBodyOf(key, metadata, infoOf(6));
  assert.deepEqual(parsed, { encoding: "zstd", decodedSize: raw.byteLength });
  const decoded = decodeSegment(key, body, parsed);
  assert.deepEqual(decoded, raw);
  // Incompressible input: node:zlib may append an empty second frame, which is dropped.
  for (const size of [1, 16384, 40_000, 1 << 20]) {
    const noise = new Uint8Array(size);
    for (let at = 0; at < size; at += 65536) {
      crypto.getRandomValues(noise.subarray(at, Math.min(size, at + 65536)));
    }
    const encoded = encodeSegment(noise);
    const declared: SegmentBody = { encoding: "zstd", decodedSize: size };
    assert.deepEqual(decodeSegment(key, encoded.body, declared), noise, `${size} bytes`);
  }
  // A real WAL of small commits is mostly repeated structure: it shrinks many times over.
  const pages = new Uint8Array(100 * 1048);
  for (let f = 0; f < 100; f++) pages.set(raw.subarray(0, 300), f * 1048);
  assert.ok(encodeSegment(pages).body.byteLength * 20 < pages.byteLength);
});

Deno.test("segmentBodyOf: no walsync-encoding is raw; unknown encodings and sizes that do not add up are integrity errors naming the key", () => {
  const info = infoOf(3);
  const size = 3 * 1048;
  assert.deepEqual(segmentBodyOf(key, {}, info), { encoding: "identity", decodedSize: size });
  assert.deepEqual(segmentBodyOf(key, { "walsync-encoding": "identity" }, info), {
    encoding: "identity",
    decodedSize: size,
  });
  assert.deepEqual(
    segmentBodyOf(key, { "walsync-encoding": "zstd", "walsync-decoded-size": String(size) }, info),
    { encoding: "zstd", decodedSize: size },
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "brotli" }, info),
    key,
    /unknown walsync-encoding "brotli".*expected identity or zstd, actual brotli/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "ZSTD" }, info),
    key,
    /unknown walsync-encoding "ZSTD"/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-encoding": "zstd" }, info),
    key,
    /walsync-decoded-size metadata is missing/,
  );
  for (const bad of ["", "-1", "1e3", "0x10", "99999999999999999999"]) {
    assertIntegrity(
      () => segmentBodyOf(key, { "walsync-encoding": "zstd", "walsync-decoded-size": bad }, info),
      key,
      /walsync-decoded-size metadata is malformed/,
    );
  }
  assertIntegrity(
    () =>
      segmentBodyOf(
        key,
        { "walsync-encoding": "zstd", "walsync-decoded-size": String(size + 1) },
        info,
      ),
    key,
    new RegExp(`walsync-decoded-size metadata differs.*expected ${size} bytes, actual ${size + 1}`),
  );
  // A raw segment may state its size too; it must add up as well.
  assertIntegrity(
    () => segmentBodyOf(key, { "walsync-decoded-size": "5" }, info),
    key,
    /walsync-decoded-size metadata differs/,
  );
  assertIntegrity(
    () => segmentBodyOf(key, {}, { ...info, frameCount: 2 ** 52 }),
    key,
    /not a byte count/,
  );
});

Deno.test("decodeSegment: garbage, truncated, padded, unchecked or mis-sized zstd bodies are integrity errors naming the key", () => {
  const raw = allByteFrames(4, 7);
  const { body } = encodeSegment(raw);
  const sized: SegmentBody = { encoding: "zstd", decodedSize: raw.byteLength };
  assert.deepEqual(decodeSegment(key, body, sized), raw);
  assert.equal(decodeSegment(key, raw, { encoding: "identity", decodedSize: 1 }), raw);

  const cases: [string, Uint8Array, SegmentBody, RegExp][] = [
    ["garbage", Uint8Array.from({ length: 500 }, (_, i) => i * 7), sized, /bad magic/],
    ["empty", new Uint8Array(0), sized, /bad magic/],
    ["raw frames labelled zstd", raw, sized, /bad magic/],
    ["truncated by one byte", body.subarray(0, body.length - 1), sized, /truncated/],
    ["truncated to half", body.subarray(0, body.length >> 1), sized, /truncated/],
    ["header only", body.subarray(0, 6), sized, /truncated/],
    ["trailing bytes", Uint8Array.from([...body, 0, 0]), sized, /2 bytes after the zstd frame/],
    ["two frames", Uint8Array.from([...body, ...body]), sized, /bytes after the zstd frame/],
    [
      "content checksum flipped",
      (() => {
        const b = body.slice();
        b[b.length - 1] ^= 0x10;
        return b;
      })(),
      sized,
      /does not decode.*checksum/,
    ],
    [
      "no content checksum",
      zstdCompressSync(raw, {
        params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 },
      }),
      sized,
      /no content checksum/,
    ],
    [
      "declared size too small",
      body,
      { encoding: "zstd", decodedSize: raw.byteLength - 1048 },
      /more bytes than its metadata says.*expected 3144 bytes/,
    ],
    [
      "declared size too large",
      body,
      { encoding: "zstd", decodedSize: raw.byteLength + 1048 },
      /size other than its metadata says.*expected 5240 bytes, actual 4192 bytes/,
    ],
  ];
  for (const [what, stored, declared, pattern] of cases) {
    try {
      assertIntegrity(() => decodeSegment(key, stored, declared), key, pattern);
    } catch (error) {
      throw new Error(`${what}: ${error}`, { cause: error });
    }
  }
  // A frame that records its content size must record the declared one.
  const pledged = zstdCompressSync(raw.subarray(0, 1000), {
    params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 },
  });
  const withSize = (pledged[4] >> 6) !== 0 || (pledged[4] & 0x20) !== 0;
  if (withSize) {
    assertIntegrity(
      () => decodeSegment(key, pledged, { encoding: "zstd", decodedSize: 1048 }),
      key,
      /frame header says 1000 bytes/,
    );
  }
});

Deno.test("fuzz: random, truncated and bit-flipped bodies and sizes only ever give an integrity error", () => {
  const random = mulberry32(0x5eed);
  const int = (n: number): number => Math.floor(random() * n);
  const raws = [allByteFrames(1, 3), allByteFrames(5, 4), new Uint8Array(3 * 1048)];
  const bodies = raws.map((raw) => encodeSegment(raw).body);
  const counts = { decoded: 0, rejected: 0 };
  for (let i = 0; i < 3000; i++) {
    const which = int(raws.length);
    const real = bodies[which];
    let stored: Uint8Array;
    switch (i % 4) {
      case 0:
        stored = Uint8Array.from({ length: int(600) }, () => int(256));
        if (random() < 0.5 && stored.length >= 4) stored.set(real.subarray(0, 4)); // magic
        break;
      case 1:
        stored = real.slice(0, int(real.byteLength + 1));
        break;
      case 2: {
        stored = real.slice();
        for (let flips = 1 + int(4); flips > 0; flips--) stored[int(stored.length)] ^= 1 << int(8);
        break;
      }
      default:
        stored = Uint8Array.from([...real, ...Array.from({ length: 1 + int(8) }, () => int(256))]);
    }
    const decodedSize = random() < 0.7 ? raws[which].byteLength : int(3) * int(6000);
    const metadata: Record<string, string> = random() < 0.9
      ? { "walsync-encoding": "zstd", "walsync-decoded-size": String(decodedSize) }
      : { "walsync-encoding": ["zstd", "gzip", "", "identity"][int(4)] };
    try {
      const body = segmentBodyOf(key, metadata, infoOf(decodedSize / 1048));
      const decoded = decodeSegment(key, stored, body);
      if (body.encoding === "zstd") assert.equal(decoded.byteLength, body.decodedSize);
      counts.decoded++;
    } catch (error) {
      if (!(error instanceof WalsyncError) || error.kind !== "integrity") {
        throw new Error(`iteration ${i}: ${error}`, { cause: error });
      }
      assert.ok(error.message.startsWith(`${key}: `), error.message);
      counts.rejected++;
    }
  }
  assert.ok(counts.rejected > 2000, JSON.stringify(counts));
  assert.ok(counts.decoded > 10, JSON.stringify(counts));
});
