/**
 * Replication lag: the age of the oldest commit not yet durable in a replica. A commit is
 * waiting either in the WAL (published by SQLite, not read yet) or in the upload queue
 * (sealed, not uploaded yet); its age counts from when the watcher first saw it. Pure
 * bookkeeping over timestamps, so the clock is always passed in.
 * @module
 */

/** What a watcher knows about commits it has not made durable. */
export interface LagClock {
  /** When the oldest commit published and not read yet was first seen (0: none). */
  unreadSince: number;
  /** Since the first of a run of failed attempts (0: the last attempt succeeded). */
  failingSince: number;
}

/** A clock with nothing waiting. */
export function createLagClock(): LagClock {
  return { unreadSince: 0, failingSince: 0 };
}

/** SQLite has published commits not read yet (seen at `now`, unless seen earlier). */
export function sawUnread(clock: LagClock, now: number): void {
  if (clock.unreadSince === 0) clock.unreadSince = now;
}

/** Everything published has been read (into the upload queue, or a snapshot). */
export function readAll(clock: LagClock): void {
  clock.unreadSince = 0;
}

/** When the commits of a segment sealed now were first seen. */
export function seenAtOfSealed(clock: LagClock, now: number): number {
  return clock.unreadSince || now;
}

/**
 * The lag in seconds at `now`.
 * @param oldestQueued When the oldest commit in the upload queue was first seen (0: none).
 * @param running A generation is running. Without one after a failure, nothing since the
 *   failure is known to be durable.
 */
export function lagSeconds(
  clock: LagClock,
  oldestQueued: number,
  running: boolean,
  now: number,
): number {
  const since = [clock.unreadSince, oldestQueued].filter((t) => t > 0);
  if (!running && clock.failingSince > 0) since.push(clock.failingSince);
  return since.length === 0 ? 0 : Math.max(0, now - Math.min(...since)) / 1000;
}

/** How far behind (ms) shipping may fall before the log says so: 30 s, or 10 sync intervals. */
export function lagWarnAfterMs(syncIntervalMs: number): number {
  return Math.max(30_000, 10 * syncIntervalMs);
}
