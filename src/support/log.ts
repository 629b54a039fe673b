/**
 * One line per event on stderr: `2026-11-24T10:00:00.000Z INFO snapshot uploaded db=app.db …`,
 * or one JSON object per line with `--json-logs`. Every line passes through `redact`.
 * @module
 */
import { redact } from "./redact.ts";

/** Severity of a log line. */
export type LogLevel = "INFO" | "WARN" | "ERROR";

/** Fields attached to an event. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Writes events. */
export interface Logger {
  /** Logs one event. */
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

const encoder = new TextEncoder();

function quote(value: string): string {
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

/**
 * A logger writing to stderr, as text or JSON lines.
 * @example
 * ```ts
 * const logger = stderrLogger(false); // true: one JSON object per line (--json-logs)
 * logger.log("INFO", "snapshot uploaded", { db: "app.db", bytes: 4096 });
 * // 2026-11-30T11:00:00.000Z INFO snapshot uploaded db=app.db bytes=4096
 * ```
 */
export function stderrLogger(json: boolean): Logger {
  return {
    log(level, message, fields = {}) {
      const time = new Date().toISOString();
      let line: string;
      if (json) {
        line = JSON.stringify({ time, level, msg: message, ...fields });
      } else {
        const parts = Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${k}=${quote(String(v))}`);
        line = [time, level, message, ...parts].join(" ");
      }
      Deno.stderr.writeSync(encoder.encode(redact(line) + "\n"));
    },
  };
}

/** A logger that adds `extra` to every event (e.g. which replica a watcher ships to). */
export function withFields(logger: Logger, extra: LogFields): Logger {
  return {
    log: (level, message, fields = {}) => logger.log(level, message, { ...fields, ...extra }),
  };
}
