/**
 * The lease of a database's history (`<db>/lease`, format 3): which process may start
 * generations, allocate txids and move the head. Taken and renewed with conditional writes,
 * so two processes can never both believe they hold it.
 * @module
 */
import { WalsyncError } from "../support/errors.ts";
import { leaseKey } from "../format/layout.ts";
import type { Storage } from "../storage/storage.ts";

/** A lease as stored. */
export interface Lease {
  /** Database name. */
  db: string;
  /** Host of the holder. */
  host: string;
  /** Process id of the holder. */
  pid: number;
  /** Random id of this holding (tells a holder its own lease from another's). */
  id: string;
  /** When the holder took it (ISO). */
  since: string;
  /** Until when it holds unless renewed (ISO); in the past once released. */
  expires: string;
}

/** Default lease time; a crashed holder blocks a successor at most this long. */
export const defaultLeaseMs = 300_000;

/** Lease time from `WALSYNC_LEASE_SECONDS` (tests use a short one), else the default. */
export function leaseMsFromEnv(): number {
  const text = Deno.env.get("WALSYNC_LEASE_SECONDS");
  const seconds = Number(text);
  return text && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : defaultLeaseMs;
}

/**
 * Whether a lease's holder is a process of this host that no longer exists (a crash or
 * SIGKILL): its lease need not be waited out. Only where `/proc` shows processes (Linux);
 * elsewhere, and for other hosts, the lease time decides.
 */
export function holderIsGone(lease: Lease): boolean {
  if (lease.host !== Deno.hostname() || !Number.isSafeInteger(lease.pid)) return false;
  if (lease.pid === Deno.pid) return false;
  try {
    Deno.statSync("/proc/self");
  } catch {
    return false; // no /proc: cannot tell
  }
  try {
    Deno.statSync(`/proc/${lease.pid}`);
    return false;
  } catch {
    return true;
  }
}

function encodeLease(lease: Lease): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ "walsync-lease": 1, ...lease }) + "\n");
}

function decodeLease(bytes: Uint8Array): Lease | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (v["walsync-lease"] !== 1 || typeof v.expires !== "string") return null;
    return v as Lease;
  } catch {
    return null;
  }
}

/** The one line a refused process prints: who holds the lease, and the ways out. */
export function heldMessage(lease: Lease, location: string): string {
  return `${lease.db} in ${location} is already being written by ${lease.host} pid ${lease.pid} since ${lease.since} (lease until ${lease.expires}); stop that process, add --takeover to take over, or wait until ${lease.expires} if it crashed`;
}

/**
 * This process no longer holds the lease of a database it was writing: another process took
 * it over (`--takeover`), or took it after it expired. The history is theirs now; this process
 * must stop writing it for good (never take it back on its own).
 */
export class LeaseLostError extends WalsyncError {
  /** Creates the error for `db`, naming the new holder when known. */
  constructor(db: string, holder: Lease | null) {
    super(
      "failure",
      `lost the lease of ${db}${
        holder ? ` to ${holder.host} pid ${holder.pid} (since ${holder.since})` : ""
      }; stopped shipping ${db}. To take it back, stop that process and restart this watch, or restart it with --takeover`,
    );
    this.name = "LeaseLostError";
  }
}

/** The current holder of `db`'s lease, if it can be read. */
export async function currentHolder(storage: Storage, db: string): Promise<Lease | null> {
  const current = await storage.readTagged(leaseKey(db)).catch(() => null);
  return current ? decodeLease(current.bytes) : null;
}

/** A lease this process holds. */
export interface HeldLease {
  /** The lease as last written. */
  lease: Lease;
  /** Its version token. */
  etag: string;
}

/** Options for {@link acquireLease}. */
export interface AcquireOptions {
  /** Lease time. */
  leaseMs: number;
  /** Take the lease even when another process holds it. */
  takeover?: boolean;
  /** Clock (tests). */
  now?: () => number;
  /** Who takes it; this host and process by default (tests play other processes). */
  holder?: { host: string; pid: number };
}

/**
 * Takes the lease of `db`: creates it, or replaces one that expired, was released, or (with
 * `takeover`) is held. Throws a one-line `failure` naming the holder otherwise.
 */
export async function acquireLease(
  storage: Storage,
  db: string,
  options: AcquireOptions,
): Promise<HeldLease> {
  const now = options.now ?? Date.now;
  const key = leaseKey(db);
  for (let attempt = 0; attempt < 5; attempt++) {
    const lease: Lease = {
      db,
      host: options.holder?.host ?? Deno.hostname(),
      pid: options.holder?.pid ?? Deno.pid,
      id: crypto.randomUUID(),
      since: new Date(now()).toISOString(),
      expires: new Date(now() + options.leaseMs).toISOString(),
    };
    const current = await storage.readTagged(key);
    if (!current) {
      const created = await storage.createIfAbsent(key, encodeLease(lease));
      if (created.written) return { lease, etag: created.etag };
      continue; // someone else created it meanwhile: look at theirs
    }
    const theirs = decodeLease(current.bytes);
    // Free: never taken properly, expired or released, held by a process of this host that is
    // gone, or by this very process (a writer that dropped its hold, e.g. after a head conflict).
    const free = theirs === null || Date.parse(theirs.expires) <= now() || holderIsGone(theirs) ||
      (theirs.host === lease.host && theirs.pid === lease.pid);
    if (!free && !options.takeover) {
      throw new WalsyncError("failure", heldMessage(theirs!, storage.location));
    }
    const replaced = await storage.replaceIfMatch(key, encodeLease(lease), current.etag);
    if (replaced.written) return { lease, etag: replaced.etag };
  }
  throw new WalsyncError("failure", `could not take the lease of ${db}: it keeps changing; retry`);
}

/**
 * Extends a held lease. Throws a `failure` when it is no longer ours (taken over, or expired
 * and taken): the caller must stop writing the history.
 */
export async function renewLease(
  storage: Storage,
  held: HeldLease,
  leaseMs: number,
  now: () => number = Date.now,
): Promise<HeldLease> {
  const lease = { ...held.lease, expires: new Date(now() + leaseMs).toISOString() };
  const renewed = await storage.replaceIfMatch(leaseKey(lease.db), encodeLease(lease), held.etag);
  if (renewed.written) return { lease, etag: renewed.etag };
  throw new LeaseLostError(lease.db, await currentHolder(storage, lease.db));
}

/** Gives a held lease back (marks it expired) so a successor need not wait; errors are ignored. */
export async function releaseLease(storage: Storage, held: HeldLease): Promise<void> {
  const lease = { ...held.lease, expires: new Date(0).toISOString() };
  await storage.replaceIfMatch(leaseKey(lease.db), encodeLease(lease), held.etag).catch(() => {});
}

/**
 * Whether the provider honours conditional writes: a second create of the lease we hold must
 * be refused. The probe's bytes differ from the lease's (a refused write whose bytes are found
 * stored counts as written, see `storage/s3_conditional.ts`); when the provider wrote them anyway, the
 * lease is still ours, with the token returned.
 */
export async function probeConditionalWrites(
  storage: Storage,
  held: HeldLease,
): Promise<{ honoured: boolean; held: HeldLease }> {
  const lease = { ...held.lease, id: crypto.randomUUID() };
  const again = await storage.createIfAbsent(leaseKey(lease.db), encodeLease(lease));
  return again.written ? { honoured: false, held: { lease, etag: again.etag } } : {
    honoured: true,
    held,
  };
}

/** Reads the lease of `db`, or null. */
export async function readLease(storage: Storage, db: string): Promise<Lease | null> {
  const current = await storage.readTagged(leaseKey(db));
  return current ? decodeLease(current.bytes) : null;
}
