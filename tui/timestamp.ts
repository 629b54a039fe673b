/**
 * Checks a typed restore time as the operator types it, with the same rule as
 * `walsync restore --timestamp` (so the scripted command the wizard shows is accepted too).
 * @module
 */
import { formatTime } from "./format.ts";

/** The verdict on a typed time. */
export type TimestampCheck =
  | { ok: true; time: Date; message: string }
  | { ok: false; message: string };

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Checks `text` as an RFC 3339 time no earlier than `earliest` (the start of the oldest
 * backup: nothing before it can be restored).
 */
export function checkTimestamp(text: string, earliest?: Date): TimestampCheck {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false, message: "Type a time, e.g. 2026-11-24T10:00:00Z" };
  const time = new Date(trimmed);
  if (!rfc3339.test(trimmed) || isNaN(time.getTime())) {
    return {
      ok: false,
      message: "Not RFC 3339 yet; e.g. 2026-11-24T10:00:00Z or 2026-11-24T12:00:00+02:00",
    };
  }
  if (earliest && !isNaN(earliest.getTime()) && time.getTime() < earliest.getTime()) {
    return {
      ok: false,
      message: `Before the oldest backup (${formatTime(earliest)}); give a later time`,
    };
  }
  return { ok: true, time, message: `Restores the state at ${formatTime(time)}` };
}
