/**
 * Process-wide coordination between watchers: a bounded number of concurrent uploads, and
 * a per-key mutex for work that must not interleave across awaits.
 * @module
 */

/** A bounded number of concurrent tasks. */
export interface Limiter {
  /** Runs `task` when a slot is free. */
  run<T>(task: () => Promise<T>): Promise<T>;
}

/**
 * Creates a {@link Limiter} with `slots` slots.
 * @example
 * const uploads = createLimiter(8);
 * await uploads.run(() => storage.put(key, body));
 */
export function createLimiter(slots: number): Limiter {
  let free = slots;
  const waiting: (() => void)[] = [];
  return {
    async run(task) {
      if (free === 0) await new Promise<void>((resolve) => waiting.push(resolve));
      else free--;
      try {
        return await task();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const processLocks = new Map<string, Promise<void>>();

/**
 * Runs `task` while no other task of this process holds the lock for `path`. Watchers of the
 * same database (one per replica) take SQLite's write lock across awaits; without this they
 * would wait for each other inside SQLite's busy handler, which blocks the event loop.
 */
export async function withProcessLock<T>(path: string, task: () => Promise<T>): Promise<T> {
  const before = processLocks.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const tail = before.then(() => mine);
  processLocks.set(path, tail);
  await before;
  try {
    return await task();
  } finally {
    release();
    if (processLocks.get(path) === tail) processLocks.delete(path);
  }
}
