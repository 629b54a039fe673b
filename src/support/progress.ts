/**
 * Progress on stderr for long work: bytes, rate and ETA, redrawn at most a few times a second
 * (cheap over a slow SSH link), and nothing at all when stderr is not a terminal.
 * @module
 */

/** Reports progress of one piece of work. */
export interface Progress {
  /** Sets the byte count done so far. */
  update(done: number): void;
  /** Sets or changes the expected total. */
  setTotal(total: number): void;
  /** Clears the line. */
  done(): void;
}

/** Human-readable byte count: `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A progress line that prints only on a terminal (or when `force` is true).
 * @example
 * ```ts
 * const bar = progress("restoring app.db", plan.bytes);
 * await restoreDatabase(storage, "app.db", { output, onBytes: (done) => bar.update(done) });
 * bar.done();
 * ```
 */
export function progress(label: string, total = 0, force = false): Progress {
  const enabled = force || Deno.stderr.isTerminal();
  const started = performance.now();
  let last = 0;
  let shown = false;
  let expected = total;
  const encoder = new TextEncoder();
  const draw = (done: number) => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    let text = `${label} ${formatBytes(done)}`;
    if (expected > 0) {
      const pct = Math.min(100, (done / expected) * 100);
      text += ` / ${formatBytes(expected)} (${pct.toFixed(0)}%)`;
    }
    text += ` ${formatBytes(rate)}/s`;
    if (expected > 0 && rate > 0 && done < expected) {
      text += ` ETA ${Math.ceil((expected - done) / rate)}s`;
    }
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}`));
    shown = true;
  };
  return {
    update(done) {
      if (!enabled) return;
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      draw(done);
    },
    setTotal(value) {
      expected = value;
    },
    done() {
      if (enabled && shown) Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    },
  };
}
