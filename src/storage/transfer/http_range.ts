/**
 * Ranged GETs over a plain HTTP/1.1 connection (`Deno.connect`, or `Deno.connectTls` for
 * https), reading the body straight into the caller's buffer. `fetch` hands a body over in
 * buffers of its own, so every byte was copied once more on the main thread; its buffers also
 * cannot land in shared memory, which the download's hashing thread reads. Measured on 1 GiB from
 * a loopback MinIO in 32 MiB ranges, 2 connections: 0.45 s and 0.29 CPU s against 0.52-0.57 s
 * and 0.44 CPU s through `fetch` (docs/benchmarks.md).
 *
 * Only what S3 answers a signed ranged GET needs: a status line, headers, a `Content-Length`
 * body on keep-alive connections. Anything else (a chunked answer to a range, a header block over
 * 16 KiB) is refused as an invalid answer and the connection closed. A proxy set in the
 * environment is `fetch`'s to honour: {@link directConnectionsAllowed} says when to use this.
 * @module
 */
import {
  errorFromAnswer,
  type FetchError,
  type FetchTarget,
  networkError,
  remainingRange,
  signFor,
} from "./s3_fetch.ts";

/** Idle keep-alive connections by origin; `close` them when the storage closes. */
export interface HttpConnections {
  /** Idle connections by `protocol//host:port`. */
  idle: Map<string, Deno.Conn[]>;
  /** How long a connection may take to open, in ms. */
  connectMs: number;
  /** How long a response may send nothing before the connection counts as dropped, in ms. */
  idleMs: number;
  /** Closes every idle connection. */
  close(): void;
}

/**
 * The SDK's limits, kept for these requests too: 2 s to connect (an endpoint behind a firewall
 * that drops packets would otherwise hold for the kernel's own minutes), and 300 s of silence
 * in a response (generous: a reader held back by a slow disk leaves the socket idle as well).
 */
const defaultTimeouts = { connectMs: 2_000, idleMs: 300_000 };

/** An empty set of connections, with the SDK's timeouts unless others are given. */
export function httpConnections(
  timeouts: { connectMs?: number; idleMs?: number } = {},
): HttpConnections {
  const idle = new Map<string, Deno.Conn[]>();
  return {
    idle,
    connectMs: timeouts.connectMs ?? defaultTimeouts.connectMs,
    idleMs: timeouts.idleMs ?? defaultTimeouts.idleMs,
    close() {
      for (const conns of idle.values()) {
        for (const conn of conns.splice(0)) closeQuietly(conn);
      }
    },
  };
}

/**
 * Whether requests may go straight to the endpoint: not when the environment names a proxy
 * (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, any case), which `fetch` then honours.
 */
export function directConnectionsAllowed(): boolean {
  try {
    for (const name of ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"]) {
      if (Deno.env.get(name) || Deno.env.get(name.toLowerCase())) return false;
    }
    return true;
  } catch {
    return false;
  }
}

const maxHead = 16 * 1024;
const encoder = new TextEncoder();

/**
 * Reads bytes `[start + at.filled, start + into.byteLength)` of the object at `url` into `into`
 * from `at.filled` on, advancing `at.filled` as bytes land, so that a dropped body can be resumed
 * from there. Throws `onDrop(reason)` when the body stops early, a {@link FetchError} for a
 * refused request or a connection that could not be made.
 * @example
 * ```ts
 * const into = new Uint8Array(1024);
 * await readRangeDirect(connections, target, url, 0, into, { filled: 0 }, (why) => new Error(why));
 * ```
 */
export async function readRangeDirect(
  connections: HttpConnections,
  target: FetchTarget,
  url: URL,
  start: number,
  into: Uint8Array,
  at: { filled: number },
  onDrop: (reason: string) => Error,
): Promise<void> {
  const total = into.byteLength;
  const headers = await signFor(target, "GET", url, {
    range: remainingRange(start, into, at),
  });
  let request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
  const { conn, head } = await send(connections, url, encoder.encode(`${request}\r\n`)).catch(
    (err) => {
      if (err instanceof Silent) throw onDrop(err.message);
      throw err;
    },
  );
  let reusable = false;
  try {
    if (head.status >= 300) {
      throw errorFromAnswer(head.status, await readErrorBody(conn, head, connections.idleMs));
    }
    const length = head.contentLength;
    if (head.status !== 206 || length !== total - at.filled || head.chunked) {
      throw {
        name: "InvalidRangeAnswer",
        message: `range answered with HTTP ${head.status}, ${length} bytes`,
        $metadata: { httpStatusCode: head.status },
      } satisfies FetchError;
    }
    const early = head.rest.subarray(0, total - at.filled);
    into.set(early, at.filled);
    at.filled += early.byteLength;
    while (at.filled < total) {
      let n: number | null;
      try {
        n = await readWithin(conn, into.subarray(at.filled), connections.idleMs);
      } catch (err) {
        if (err instanceof Silent) throw onDrop(err.message);
        throw onDrop(networkError(err).code ?? "connection dropped");
      }
      if (n === null) throw onDrop("body ended early");
      at.filled += n;
    }
    reusable = head.keepAlive && head.rest.byteLength <= early.byteLength;
  } finally {
    if (reusable) idleList(connections, url).push(conn);
    else closeQuietly(conn);
  }
}

/** A response's status line and the headers this client reads, with the body bytes read along. */
interface ResponseHead {
  status: number;
  contentLength: number;
  chunked: boolean;
  keepAlive: boolean;
  /** Bytes after the header block that arrived in the same reads. */
  rest: Uint8Array;
}

/**
 * Sends `request` on an idle connection to the URL's origin, or a new one, and reads the
 * response head. An idle connection the server has closed in the meantime fails before any
 * byte of an answer: the request then goes once more on a new connection.
 */
async function send(
  connections: HttpConnections,
  url: URL,
  request: Uint8Array,
): Promise<{ conn: Deno.Conn; head: ResponseHead }> {
  const idle = idleList(connections, url).pop();
  if (idle) {
    try {
      await writeFully(idle, request).catch((err) => {
        throw new StaleConnection(String(err));
      });
      return { conn: idle, head: await readHead(idle, connections.idleMs) };
    } catch (err) {
      closeQuietly(idle);
      if (err instanceof Silent) throw err;
      if (!(err instanceof StaleConnection)) throw networkError(err);
    }
  }
  const conn = await connect(url, connections.connectMs);
  try {
    await writeFully(conn, request);
    return { conn, head: await readHead(conn, connections.idleMs) };
  } catch (err) {
    closeQuietly(conn);
    throw err instanceof Silent ? err : networkError(err);
  }
}

/** The connection ended before any byte of an answer. */
class StaleConnection extends Error {}

/** The server sent nothing for the idle timeout: the connection is closed and counts as dropped. */
class Silent extends Error {}

/** Opens a connection to the URL's origin, giving up after `connectMs`. */
async function connect(url: URL, connectMs: number): Promise<Deno.Conn> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  const opening = secure ? Deno.connectTls({ hostname, port }) : Deno.connect({ hostname, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`connect timed out after ${connectMs} ms`)),
      connectMs,
    );
  });
  try {
    const conn = await Promise.race([opening, timedOut]);
    if (!secure) (conn as Deno.TcpConn).setNoDelay(true);
    return conn;
  } catch (err) {
    // A connection that opens after all is closed at once.
    opening.then((late) => closeQuietly(late), () => {});
    throw networkError(err);
  } finally {
    clearTimeout(timer);
  }
}

/** `conn.read`, closing the connection and throwing {@link Silent} after `idleMs` without data. */
async function readWithin(
  conn: Deno.Conn,
  into: Uint8Array,
  idleMs: number,
): Promise<number | null> {
  let silent = false;
  const timer = setTimeout(() => {
    silent = true;
    closeQuietly(conn);
  }, idleMs);
  try {
    return await conn.read(into);
  } catch (err) {
    if (silent) throw new Silent(`no data for ${idleMs / 1000} s`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function writeFully(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
}

/** Reads up to the end of the header block and parses it. */
async function readHead(conn: Deno.Conn, idleMs: number): Promise<ResponseHead> {
  const buf = new Uint8Array(maxHead);
  let filled = 0;
  for (;;) {
    const n = await readWithin(conn, buf.subarray(filled), idleMs).catch((err) => {
      if (err instanceof Silent || filled > 0) throw err;
      throw new StaleConnection(String(err));
    });
    if (n === null) {
      if (filled === 0) throw new StaleConnection("closed");
      throw new Error("connection closed in the middle of a response head");
    }
    const from = Math.max(0, filled - 3);
    filled += n;
    const end = headEnd(buf, from, filled);
    if (end >= 0) {
      return parseHead(new TextDecoder().decode(buf.subarray(0, end)), buf.slice(end + 4, filled));
    }
    if (filled === maxHead) throw new Error("response head longer than 16 KiB");
  }
}

/** Index of the `\r\n\r\n` that ends a header block in `buf[from, to)`, or -1. */
function headEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

function parseHead(text: string, rest: Uint8Array): ResponseHead {
  const [statusLine, ...lines] = text.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (status === undefined) throw new Error("not an HTTP/1.1 response");
  const fields = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  const length = fields.get("content-length");
  return {
    status: Number(status),
    contentLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : -1,
    chunked: /chunked/i.test(fields.get("transfer-encoding") ?? ""),
    keepAlive: !/close/i.test(fields.get("connection") ?? "") && statusLine.startsWith("HTTP/1.1"),
    rest,
  };
}

/** An error answer's body (S3's XML), at most 64 KiB of it; the connection is not reused. */
async function readErrorBody(
  conn: Deno.Conn,
  head: ResponseHead,
  idleMs: number,
): Promise<string> {
  const limit = head.contentLength >= 0 ? Math.min(head.contentLength, 64 * 1024) : 64 * 1024;
  const body = new Uint8Array(limit);
  let filled = Math.min(head.rest.byteLength, limit);
  body.set(head.rest.subarray(0, filled));
  while (filled < limit) {
    const n = await readWithin(conn, body.subarray(filled), idleMs).catch(() => null);
    if (n === null) break;
    filled += n;
  }
  return new TextDecoder().decode(body.subarray(0, filled));
}

function idleList(connections: HttpConnections, url: URL): Deno.Conn[] {
  const key = `${url.protocol}//${url.host}`;
  let list = connections.idle.get(key);
  if (list === undefined) connections.idle.set(key, list = []);
  return list;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
