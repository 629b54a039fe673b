/**
 * `readRangeDirect` (src/storage/transfer/http_range.ts), against a loopback server that
 * answers as told: a range lands in the caller's buffer and its connection is kept for the
 * next range; a kept connection the server has closed meanwhile is replaced without an error;
 * a body cut short stops with the bytes received counted (so the download resumes from
 * there); an error answer is S3's code and status; an answer this client does not read (a
 * chunked body) is refused rather than misread.
 * @module
 */
import assert from "node:assert/strict";
import { httpConnections, readRangeDirect } from "../../src/storage/transfer/http_range.ts";
import type { FetchTarget } from "../../src/storage/transfer/s3_fetch.ts";

/** What the stub does with one request: the bytes it sends back, and whether it then hangs up. */
type Answer = { send: Uint8Array; close: boolean };

/** A loopback server answering requests in order from `answers`; counts connections. */
function stubServer(answers: Answer[]): {
  url: URL;
  connections: () => number;
  requests: string[];
  stop: () => void;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const requests: string[] = [];
  const open = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      connections++;
      open.add(conn);
      (async () => {
        const buf = new Uint8Array(65536);
        let text = "";
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            text += new TextDecoder().decode(buf.subarray(0, n));
            while (text.includes("\r\n\r\n")) {
              const end = text.indexOf("\r\n\r\n") + 4;
              requests.push(text.slice(0, end));
              text = text.slice(end);
              const answer = answers.shift();
              if (!answer) throw new Error("no answer left");
              await conn.write(answer.send);
              if (answer.close) throw new Error("hang up");
            }
          }
        } catch { /* hung up */ }
        open.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: new URL(`http://127.0.0.1:${port}/bucket/key`),
    connections: () => connections,
    requests,
    stop() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    },
  };
}

const target: FetchTarget = {
  endpoint: "http://127.0.0.1",
  region: "us-east-1",
  bucket: "bucket",
  credentials: () => Promise.resolve({ accessKeyId: "AKID", secretAccessKey: "secret" }),
};

function partial(body: Uint8Array, extra = ""): Uint8Array {
  const head = `HTTP/1.1 206 Partial Content\r\ncontent-length: ${body.byteLength}\r\n${extra}\r\n`;
  return new Uint8Array([...new TextEncoder().encode(head), ...body]);
}

const body = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255);
const drop = (why: string) => new Error(`dropped: ${why}`);

Deno.test("a range lands in the caller's buffer, signed, and the next range goes on the same connection", async () => {
  const first = body(3000, 1);
  const second = body(5000, 2);
  const server = stubServer([{ send: partial(first), close: false }, {
    send: partial(second),
    close: false,
  }]);
  const connections = httpConnections();
  try {
    const into = new Uint8Array(3000);
    const at = { filled: 0 };
    await readRangeDirect(connections, target, server.url, 100, into, at, drop);
    assert.deepEqual(into, first);
    assert.equal(at.filled, 3000);
    const next = new Uint8Array(new SharedArrayBuffer(5000));
    await readRangeDirect(connections, target, server.url, 3100, next, { filled: 0 }, drop);
    assert.deepEqual(new Uint8Array(next), second);
    assert.equal(server.connections(), 1);
    assert.match(server.requests[0], /^GET \/bucket\/key HTTP\/1\.1\r\n/);
    assert.match(server.requests[0], /\r\nrange: bytes=100-3099\r\n/);
    assert.match(server.requests[0], /\r\nauthorization: AWS4-HMAC-SHA256 /);
    assert.match(server.requests[1], /\r\nrange: bytes=3100-8099\r\n/);
  } finally {
    connections.close();
    server.stop();
  }
});

Deno.test("a kept connection the server closed while idle is replaced by a new one, without an error", async () => {
  const first = body(1000, 3);
  const second = body(1000, 4);
  // The server hangs up after its first answer although it did not say `connection: close`.
  const server = stubServer([{ send: partial(first), close: true }, {
    send: partial(second),
    close: false,
  }]);
  const connections = httpConnections();
  try {
    await readRangeDirect(connections, target, server.url, 0, new Uint8Array(1000), {
      filled: 0,
    }, drop);
    await new Promise((r) => setTimeout(r, 50));
    const into = new Uint8Array(1000);
    await readRangeDirect(connections, target, server.url, 1000, into, { filled: 0 }, drop);
    assert.deepEqual(into, second);
    assert.equal(server.connections(), 2);
  } finally {
    connections.close();
    server.stop();
  }
});

Deno.test("a body cut short stops with the bytes received counted, so the download can resume from there", async () => {
  const whole = body(4000, 5);
  const cut = partial(whole).subarray(0, partial(whole).byteLength - 1500);
  const server = stubServer([{ send: cut, close: true }]);
  const connections = httpConnections();
  try {
    const into = new Uint8Array(4000);
    const at = { filled: 0 };
    await assert.rejects(
      readRangeDirect(connections, target, server.url, 0, into, at, drop),
      /dropped: body ended early/,
    );
    assert.equal(at.filled, 2500);
    assert.deepEqual(into.subarray(0, 2500), whole.subarray(0, 2500));
  } finally {
    connections.close();
    server.stop();
  }
});

Deno.test("an error answer is S3's code and HTTP status; a chunked answer to a range, or a whole object instead of the range, is refused, not misread", async () => {
  const xml = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
  const server = stubServer([
    {
      send: new TextEncoder().encode(
        `HTTP/1.1 404 Not Found\r\ncontent-length: ${xml.length}\r\n\r\n${xml}`,
      ),
      close: false,
    },
    {
      send: new TextEncoder().encode(
        "HTTP/1.1 206 Partial Content\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
      ),
      close: false,
    },
    {
      send: new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcd"),
      close: false,
    },
  ]);
  const connections = httpConnections();
  try {
    await assert.rejects(
      readRangeDirect(connections, target, server.url, 0, new Uint8Array(4), { filled: 0 }, drop),
      (err: { Code?: string; $metadata?: { httpStatusCode?: number } }) =>
        err.Code === "NoSuchKey" && err.$metadata?.httpStatusCode === 404,
    );
    await assert.rejects(
      readRangeDirect(connections, target, server.url, 0, new Uint8Array(4), { filled: 0 }, drop),
      (err: { name?: string }) => err.name === "InvalidRangeAnswer",
    );
    // A server that ignores the range and sends the whole object is not an S3 error answer.
    await assert.rejects(
      readRangeDirect(connections, target, server.url, 0, new Uint8Array(4), { filled: 0 }, drop),
      (err: { name?: string }) => err.name === "InvalidRangeAnswer",
    );
  } finally {
    connections.close();
    server.stop();
  }
});

Deno.test("a server that goes silent in the middle of a body is a dropped connection once the idle timeout passes, with the bytes received counted", async () => {
  const whole = body(4000, 6);
  const server = stubServer([{ send: partial(whole).subarray(0, 200), close: false }]);
  const connections = httpConnections({ idleMs: 200 });
  try {
    const at = { filled: 0 };
    const started = performance.now();
    await assert.rejects(
      readRangeDirect(connections, target, server.url, 0, new Uint8Array(4000), at, drop),
      /dropped: no data for 0\.2 s/,
    );
    assert.ok(performance.now() - started < 5000);
    assert.ok(at.filled > 0 && at.filled < 4000, `filled ${at.filled}`);
  } finally {
    connections.close();
    server.stop();
  }
});

Deno.test("a connection the endpoint never answers fails after the connect timeout as a network error", async () => {
  // A listener that never accepts: once its backlog is full, Linux drops further SYNs, as a
  // firewall that drops packets does, and a connect waits for the kernel's own timeout.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const queued: Deno.Conn[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < 4096; i++) {
      const opening = Deno.connect({ hostname: "127.0.0.1", port });
      const opened = await Promise.race([opening, new Promise((r) => setTimeout(r, 100, null))]);
      if (opened === null) {
        pending.push(opening.then((c) => c.close(), () => {}));
        break;
      }
      queued.push(opened as Deno.Conn);
    }
    const connections = httpConnections({ connectMs: 300 });
    const url = new URL(`http://127.0.0.1:${port}/bucket/key`);
    const started = performance.now();
    await assert.rejects(
      readRangeDirect(connections, target, url, 0, new Uint8Array(4), { filled: 0 }, drop),
      (err: { code?: string; $metadata?: unknown }) =>
        err.code === "ETIMEDOUT" && err.$metadata !== undefined,
    );
    assert.ok(performance.now() - started < 5000, "it waited for the kernel's own timeout");
    connections.close();
  } finally {
    for (const conn of queued) conn.close();
    listener.close();
  }
});
