/**
 * The torture test's model of the source database: which rows every commit left behind, by
 * commit number (`seq`, kept in the database's `meta` table and bumped by every transaction the
 * writers make), and the restorable points already checked against the source.
 *
 * Row bytes are random, so the model does not know them; it knows each row's id, the commit that
 * wrote it and its length (its "shape"). A restore at any txid must show the exact shape of the
 * commit it claims; a restore at a recorded point must also hash like the source did then.
 * @module
 */
import { createHash } from "node:crypto";

/** A row as the model knows it. */
export interface RowShape {
  /** Commit that last wrote the row. */
  seq: number;
  /** Length of its blob in bytes. */
  len: number;
}

/** What one committed transaction did, as its writer reported it. */
export interface TxEffect {
  /** The transaction's commit number (meta.seq after its bump). */
  seq: number;
  /** Which writer committed it (for messages). */
  writer: string;
  /** Rows inserted or rewritten: id and new blob length. */
  written: [number, number][];
  /** Rows deleted (after the writes). */
  deleted: number[];
  /** The transaction recreated the database: every earlier row is gone. */
  recreated?: boolean;
}

/** A point checked when the source was quiet: restoring `txid` must give `sha3` again. */
export interface RecordedPoint {
  txid: number;
  /** `.sha3sum` of the source then (and of the restore). */
  sha3: string;
  seq: number;
  /** Step of the run that recorded it. */
  step: number;
}

/** SHA256 hex of the shape lines `id:seq:len`, ordered by id (the same text SQL builds). */
export function shapeDigest(lines: string[]): string {
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/** SQL that prints a database's shape lines, in the order {@link shapeDigest} expects. */
export const shapeSql = "SELECT id || ':' || seq || ':' || length(data) FROM t ORDER BY id;";

/** The model: current rows, the shape after every commit, recorded points. */
export class Model {
  /** Last commit number the model knows. */
  seq = 0;
  /** Rows now. */
  readonly rows = new Map<number, RowShape>();
  /** Shape digest after each commit, by seq. */
  readonly history = new Map<number, string>();
  /** Points checked against the source, oldest first. */
  readonly points: RecordedPoint[] = [];
  /** Every txid a restore showed, with the commit it held (for the order check). */
  readonly seen = new Map<number, number>();

  constructor() {
    this.history.set(0, this.digest());
  }

  /** Shape digest of the rows now. */
  digest(): string {
    const ids = [...this.rows.keys()].sort((a, b) => a - b);
    return shapeDigest(
      ids.map((id) => `${id}:${this.rows.get(id)!.seq}:${this.rows.get(id)!.len}`),
    );
  }

  /** Total blob bytes now. */
  bytes(): number {
    let sum = 0;
    for (const row of this.rows.values()) sum += row.len;
    return sum;
  }

  /**
   * Applies committed transactions, in commit order; returns a problem when their numbers do not
   * follow on from the model's (a commit the model never saw, or one reported twice).
   */
  apply(effects: TxEffect[]): string | null {
    for (const effect of [...effects].sort((a, b) => a.seq - b.seq)) {
      if (effect.seq !== this.seq + 1) {
        return `source commit ${effect.seq} by ${effect.writer} does not follow model commit ${this.seq}`;
      }
      if (effect.recreated) this.rows.clear();
      // Statements run writes first, deletes last (see txSql).
      for (const [id, len] of effect.written) this.rows.set(id, { seq: effect.seq, len });
      for (const id of effect.deleted) this.rows.delete(id);
      this.seq = effect.seq;
      this.history.set(this.seq, this.digest());
    }
    return null;
  }

  /** Ids of rows now, in id order (for choosing what to delete or rewrite). */
  ids(): number[] {
    return [...this.rows.keys()].sort((a, b) => a - b);
  }

  /**
   * Records that a restore at `txid` held commit `seq`; returns a problem when that contradicts
   * an earlier restore (txids number states in order, so a later txid never holds an older commit).
   */
  observe(txid: number, seq: number): string | null {
    for (const [otherTxid, otherSeq] of this.seen) {
      if (otherTxid === txid && otherSeq !== seq) {
        return `txid ${txid} restored commit ${seq}, earlier it restored commit ${otherSeq}`;
      }
      if (otherTxid < txid && otherSeq > seq) {
        return `txid ${txid} restored commit ${seq}, older than commit ${otherSeq} at txid ${otherTxid}`;
      }
      if (otherTxid > txid && otherSeq < seq) {
        return `txid ${txid} restored commit ${seq}, newer than commit ${otherSeq} at txid ${otherTxid}`;
      }
    }
    this.seen.set(txid, seq);
    return null;
  }
}
