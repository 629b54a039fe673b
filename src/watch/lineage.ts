/**
 * Where one database's backup stands: the generation being continued and the WAL position
 * its last shipped (or queued) segment ended at.
 * @module
 */
import type { WalHeader, WalPosition } from "../format/wal.ts";

/** Where one database's backup stands. */
export interface Lineage {
  /** Generation id. */
  generation: string;
  /** Page size of the snapshot; a WAL with another one cannot continue it. */
  pageSize: number;
  /** Header of the WAL being read (null before there was one). */
  header: WalHeader | null;
  /** Where the next read starts (null before there was a WAL). */
  position: WalPosition | null;
  /** Last txid given to an object of this generation. */
  txid: number;
  /** SHA256 of the last object of this generation (the next segment's `prevSha256`). */
  prevSha256: string;
  /** When the generation started (ms since epoch). */
  startedAt: number;
  /** Inode of the `-wal` file `header` was read from (null before there was one). */
  walInode: number | null;
  /** WAL offset at our last complete checkpoint (-1 for none): nothing to do until it moves. */
  checkpointedAt: number;
}
