/**
 * When a watcher wants its next tick: at the sync interval normally, sooner while it polls
 * for the application's first commit after our own checkpoint (to leave read slot 0), while
 * a checkpoint waits for the write lock, or while a backlog is being read; later after
 * failures (backoff). Pure functions over a small state record.
 * @module
 */

/** How often to look for the application's first commit after our own checkpoint. */
export const escapePollMs = 5;
/** For how long after our own checkpoint to look that often; then once per {@link slowEscapePollMs}. */
export const escapeFastForMs = 2000;
/** How often to look after that, for {@link slowEscapeForMs} in all. */
export const slowEscapePollMs = 250;
/** How long a held reader on slot 0 is watched closely at all. */
export const slowEscapeForMs = 10_000;
/** How soon to try again for the write lock when a checkpoint is due and a writer held it. */
export const checkpointRetryMs = 20;
/** Longest wait between failed attempts. */
export const maxBackoffMs = 30_000;

/** The timing state of one watcher. */
export interface Schedule {
  /** When the next full sync is due; ticks before it only do the light work. */
  nextSyncAt: number;
  /**
   * Since when our held read transaction is on read slot 0 (it began on a fully
   * checkpointed WAL) with everything in the WAL shipped, 0 when it is not. Until it moves
   * to a reader with a WAL mark, the application's automatic checkpoints cannot copy
   * anything and redo their setup at every commit, so we move as soon as it commits.
   */
  onSlotZeroSince: number;
  /** Poll at {@link escapePollMs} (after our own checkpoint, when a writer is known busy). */
  escapeFast: boolean;
  /** Our checkpoint is due but a writer held the lock; try again shortly. */
  checkpointDue: boolean;
  /** No attempt before this time (backoff after a failure). */
  retryAt: number;
  /** Failed attempts in a row. */
  failures: number;
}

/** A schedule with nothing due yet. */
export function createSchedule(): Schedule {
  return {
    nextSyncAt: 0,
    onSlotZeroSince: 0,
    escapeFast: false,
    checkpointDue: false,
    retryAt: 0,
    failures: 0,
  };
}

/**
 * How soon (ms) the next tick is wanted, or 0 for "at the next sync".
 * @param running A generation is running.
 * @param behind The last read stopped before the end of the WAL.
 */
export function nextTickIn(s: Schedule, running: boolean, behind: boolean, now: number): number {
  if (!running) return 0;
  if (behind) return 1;
  if (s.onSlotZeroSince !== 0) {
    // An idle database stays on slot 0 harmlessly: look often only for a while, then
    // leave it to the regular syncs.
    const since = now - s.onSlotZeroSince;
    if (s.escapeFast && since < escapeFastForMs) return escapePollMs;
    if (since < slowEscapeForMs) return slowEscapePollMs;
  }
  return s.checkpointDue ? checkpointRetryMs : 0;
}

/** What decides whether our own checkpoint is due. */
export interface CheckpointView {
  /** WAL offset after the last frame read. */
  offset: number;
  /** WAL offset at our last complete checkpoint (-1 for none). */
  checkpointedAt: number;
  /** Segments waiting for upload. */
  pending: number;
  /** The last read stopped before the end of the WAL. */
  behind: boolean;
  /** The checkpoint threshold in bytes. */
  checkpointBytes: number;
}

/**
 * Whether to checkpoint now: everything read is uploaded, the WAL is past the threshold,
 * and it has moved since our last checkpoint (until a writer restarts the WAL the offset
 * stays past the threshold; checkpointing again would only take the write lock).
 */
export function checkpointWanted(v: CheckpointView): boolean {
  return v.pending === 0 && !v.behind && v.offset > v.checkpointBytes &&
    v.offset !== v.checkpointedAt;
}

/** Backoff after `failures` failed attempts in a row: 1 s, 2 s, 4 s … up to 30 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(maxBackoffMs, 1000 * 2 ** Math.min(Math.max(failures, 1) - 1, 5));
}

/** Records a failure: the next attempt waits for the backoff; returns the wait. */
export function recordFailure(s: Schedule, now: number): number {
  s.failures++;
  const wait = retryDelayMs(s.failures);
  s.retryAt = now + wait;
  s.nextSyncAt = 0;
  return wait;
}

/** Whether a full sync (rather than only the light work between syncs) is due. */
export function syncDue(s: Schedule, now: number): boolean {
  return now >= s.nextSyncAt;
}
