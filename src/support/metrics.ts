/**
 * Prometheus metrics over HTTP (`GET /metrics`), off unless an address is given, and bound to
 * 127.0.0.1 unless the operator names another host.
 * @module
 */
import { usageError } from "./errors.ts";

/** One labelled sample. */
export interface Sample {
  /** Label values, e.g. `{ db: "app.db", replica: "s3://b/p" }`. */
  labels: Record<string, string>;
  /** The value. */
  value: number;
}

/** One metric family. */
export interface Metric {
  /** Metric name, e.g. `walsync_replication_lag_seconds`. */
  name: string;
  /** `gauge` or `counter`. */
  type: "gauge" | "counter";
  /** One line of help. */
  help: string;
  /** Samples. */
  samples: Sample[];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Renders metric families in the Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",");
      lines.push(
        `${m.name}${labels ? `{${labels}}` : ""} ${Number.isFinite(s.value) ? s.value : 0}`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** Parses `host:port` (`:9090` means 127.0.0.1:9090). */
export function parseListenAddress(addr: string): { hostname: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw usageError(`metrics address "${addr}" must be host:port, e.g. 127.0.0.1:9090`);
  }
  const host = m[1].replace(/^\[|\]$/g, "");
  return { hostname: host === "" ? "127.0.0.1" : host, port };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The port it listens on (useful with port 0). */
  port: number;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Serves `collect()` at `/metrics` on `addr`.
 * @example
 * ```ts
 * const up = { labels: {}, value: 1 };
 * const server = serveMetrics(":9090", () => [
 *   { name: "walsync_up", type: "gauge", help: "1 while running.", samples: [up] },
 * ]);
 * // curl http://127.0.0.1:9090/metrics
 * await server.close();
 * ```
 */
export function serveMetrics(addr: string, collect: () => Metric[]): MetricsServer {
  const { hostname, port } = parseListenAddress(addr);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = serve(hostname, port, collect);
  } catch (err) {
    // In use, not an address of this machine, an unknown host, a privileged port: the
    // operator's choice of address, not an internal error.
    const why = err instanceof Deno.errors.AddrInUse
      ? "is already in use"
      : `cannot be listened on (${err instanceof Error ? err.message : String(err)})`;
    throw usageError(`metrics address ${addr} ${why}; choose another --metrics-addr host:port`);
  }
  return { port: server.addr.port, close: () => server.shutdown() };
}

function serve(
  hostname: string,
  port: number,
  collect: () => Metric[],
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname, port, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") {
      return new Response("walsync: metrics are at /metrics\n", { status: 404 });
    }
    return new Response(renderMetrics(collect()), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  });
}
