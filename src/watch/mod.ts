/**
 * Continuous backup: ship every committed WAL frame of one or many databases to storage on
 * a short interval, as checksummed segments that continue a snapshot. The pieces live in
 * `src/watch/` (see `watcher.ts` for how they fit); this module is their public face.
 * @module
 */
export { createWatcher } from "./watcher.ts";
export { createLimiter, type Limiter, withProcessLock } from "./locks.ts";
export {
  type DatabaseWatcher,
  watchDefaults,
  type WatchOptions,
  type WatchStatus,
} from "./types.ts";
