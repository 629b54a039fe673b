/**
 * A loopback HTTP/1.1 proxy that sits between a client and MinIO and damages chosen bodies
 * in transit: it flips one byte of a request or response body, or cuts the connection in
 * the middle of one. Everything else passes through byte for byte, so S3 signatures (which
 * cover the `Host` header the client sent) stay valid.
 *
 * It understands just enough HTTP to find body boundaries on keep-alive connections:
 * `Content-Length` bodies, `1xx` interim responses and bodiless `HEAD` answers. A chunked
 * body switches that connection to plain pass-through (no fault fires on it afterwards).
 * @module
 */

/** One exchange as the proxy saw it. */
export interface Exchange {
  /** Request method, upper case. */
  method: string;
  /** Request target: path and query, as sent. */
  target: string;
  /** The request's `Range` header, if any. */
  range?: string;
}

/** Damage to do to one body. */
export interface Fault {
  /** The request's body (upload) or the response's body (download). */
  direction: "request" | "response";
  /** Which exchanges it applies to. */
  match: (exchange: Exchange) => boolean;
  /**
   * Flip one byte, close both connections at that point, or hold the rest of the body back
   * until {@link DamageProxy.release} is called.
   */
  action: "flip" | "cut" | "stall";
  /** Where in the body, as a fraction of its length (default 0.5). */
  at?: number;
  /** How many bodies to damage before the fault retires (default 1). */
  times?: number;
  /** Bodies shorter than this are left alone (default 1). */
  minBytes?: number;
}

/** A fault that fired. */
export interface Fired extends Exchange {
  /** Index of the fault in the order added. */
  fault: number;
  /** Body length and the offset where it acted. */
  length: number;
  offset: number;
}

/** A running proxy. */
export interface DamageProxy {
  /** `http://127.0.0.1:<port>`: point the client here instead of at MinIO. */
  endpoint: string;
  /** Adds a fault; returns its index. */
  add(fault: Fault): number;
  /** Faults that fired so far, in order. */
  fired: Fired[];
  /** Lets every stalled body go on. */
  release(): void;
  /** Stops listening and closes every connection. */
  stop(): Promise<void>;
}

const headEnd = new Uint8Array([13, 10, 13, 10]);

function indexOfHeadEnd(bytes: Uint8Array): number {
  outer: for (let i = 0; i + 4 <= bytes.length; i++) {
    for (let j = 0; j < 4; j++) if (bytes[i + j] !== headEnd[j]) continue outer;
    return i + 4;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

interface ParsedHead {
  firstLine: string;
  headers: Map<string, string>;
}

function parseHead(bytes: Uint8Array): ParsedHead {
  const lines = new TextDecoder().decode(bytes).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return { firstLine: lines[0], headers };
}

/** Starts a proxy in front of `target` (`http://127.0.0.1:<port>`). */
export function startDamageProxy(target: string): DamageProxy {
  const url = new URL(target);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const faults: { fault: Fault; left: number }[] = [];
  const fired: Fired[] = [];
  const conns = new Set<Deno.Conn>();
  let released!: () => void;
  const releasedNow = new Promise<void>((resolve) => (released = resolve));

  const pick = (direction: Fault["direction"], exchange: Exchange, length: number) => {
    for (const [index, entry] of faults.entries()) {
      if (entry.left <= 0 || entry.fault.direction !== direction) continue;
      if (length < (entry.fault.minBytes ?? 1) || !entry.fault.match(exchange)) continue;
      entry.left--;
      const offset = Math.min(length - 1, Math.floor(length * (entry.fault.at ?? 0.5)));
      fired.push({ ...exchange, fault: index, length, offset });
      return { action: entry.fault.action, offset };
    }
    return undefined;
  };

  /** Copies one direction, parsing message boundaries and applying faults. */
  const pump = async (
    from: Deno.Conn,
    to: Deno.Conn,
    direction: Fault["direction"],
    requests: Exchange[],
    closeBoth: () => void,
  ): Promise<void> => {
    const buf = new Uint8Array(64 * 1024);
    let head: Uint8Array = new Uint8Array(0);
    let inBody = false;
    let remaining = 0;
    let bodyAt = 0;
    let raw = false;
    let fault: { action: Fault["action"]; offset: number } | undefined;
    for (;;) {
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      let chunk: Uint8Array = buf.slice(0, n);
      while (chunk.length > 0) {
        if (raw) {
          await writeAll(to, chunk);
          break;
        }
        if (!inBody) {
          head = concat(head, chunk);
          const end = indexOfHeadEnd(head);
          if (end < 0) break;
          const parsed = parseHead(head.subarray(0, end));
          chunk = head.subarray(end);
          await writeAll(to, head.subarray(0, end));
          head = new Uint8Array(0);
          let exchange: Exchange;
          let length = Number(parsed.headers.get("content-length") ?? "0");
          if (direction === "request") {
            const [method, path] = parsed.firstLine.split(" ");
            exchange = { method, target: path, range: parsed.headers.get("range") };
            requests.push(exchange);
          } else {
            const status = Number(parsed.firstLine.split(" ")[1]);
            if (status >= 100 && status < 200) continue;
            exchange = requests.shift() ?? { method: "?", target: "?" };
            if (exchange.method === "HEAD" || status === 204 || status === 304) length = 0;
          }
          if (parsed.headers.get("transfer-encoding")?.includes("chunked")) {
            raw = true;
            continue;
          }
          remaining = length;
          bodyAt = 0;
          inBody = length > 0;
          fault = length > 0 ? pick(direction, exchange, length) : undefined;
          continue;
        }
        const take = Math.min(remaining, chunk.length);
        let piece = chunk.subarray(0, take);
        chunk = chunk.subarray(take);
        if (fault && fault.offset >= bodyAt && fault.offset < bodyAt + take) {
          const at = fault.offset - bodyAt;
          if (fault.action === "cut") {
            if (at > 0) await writeAll(to, piece.subarray(0, at));
            closeBoth();
            return;
          }
          if (fault.action === "stall") {
            if (at > 0) await writeAll(to, piece.subarray(0, at));
            await releasedNow;
            await writeAll(to, piece.subarray(at));
            fault = undefined;
            bodyAt += take;
            remaining -= take;
            if (remaining === 0) inBody = false;
            continue;
          }
          piece = piece.slice();
          piece[at] ^= 0x5a;
          fault = undefined;
        }
        await writeAll(to, piece);
        bodyAt += take;
        remaining -= take;
        if (remaining === 0) inBody = false;
      }
    }
    closeBoth();
  };

  const serve = async (client: Deno.Conn): Promise<void> => {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
    } catch {
      client.close();
      return;
    }
    conns.add(client);
    conns.add(server);
    let closed = false;
    const closeBoth = () => {
      if (closed) return;
      closed = true;
      for (const c of [client, server]) {
        conns.delete(c);
        try {
          c.close();
        } catch { /* already closed */ }
      }
    };
    const requests: Exchange[] = [];
    await Promise.allSettled([
      pump(client, server, "request", requests, closeBoth),
      pump(server, client, "response", requests, closeBoth),
    ]);
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      serve(conn).catch(() => {});
    }
  })();

  return {
    endpoint: `http://127.0.0.1:${port}`,
    add(fault) {
      faults.push({ fault, left: fault.times ?? 1 });
      return faults.length - 1;
    },
    fired,
    release: () => released(),
    async stop() {
      released();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      conns.clear();
      await accepting;
    },
  };
}
