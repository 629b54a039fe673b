/**
 * The restore wizard, screen by screen, against in-memory services (no storage, no files):
 * what each step shows, what it accepts and refuses, and where Enter, Esc and Ctrl-C lead.
 * The end-to-end run on a real terminal is `tui_e2e_test.ts`.
 * @module
 */
import nodeAssert from "node:assert/strict";
import { Text } from "ink";
import { render } from "ink-testing-library";
import { parseTarget } from "../../src/cli/mod.ts";
import { integrityError, WalsyncError } from "../../src/support/errors.ts";
import type { ListedDatabase, RestorePoint } from "../../src/ops/list.ts";
import type { RestoreOptions, RestoreResult } from "../../src/ops/restore.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { App } from "../../tui/app.tsx";
import { commandLines, scriptedCommand, shellQuote } from "../../tui/command_line.ts";
import { defaultOutputPath, expandHome } from "../../tui/output_path.ts";
import { progressBar, progressLine } from "../../tui/restore_step.tsx";
import type { WizardServices } from "../../tui/services.ts";
import { initialState, quitCode, wizardReducer } from "../../tui/state.ts";
import { tableReport } from "../../tui/table_report.ts";
import { checkTimestamp } from "../../tui/timestamp.ts";
import { colorTheme, plainTheme, ThemeContext, themeFromEnv } from "../../tui/theme.tsx";
import { editLine } from "../../tui/text_field.tsx";

// ---------------------------------------------------------------------------------------------
// Test tools

const assert: typeof nodeAssert.ok = nodeAssert.ok;
const assertEquals: typeof nodeAssert.deepStrictEqual = nodeAssert.deepStrictEqual;
const assertMatch: typeof nodeAssert.match = nodeAssert.match;
const assertNotMatch: typeof nodeAssert.doesNotMatch = nodeAssert.doesNotMatch;

const keys = {
  enter: "\r",
  esc: "\x1b",
  up: "\x1b[A",
  down: "\x1b[B",
  backspace: "\x7f",
  ctrlC: "\x03",
  ctrlU: "\x15",
} as const;

// deno-lint-ignore no-control-regex
const ansi = /\x1b\[[0-9;?]*[A-Za-z]/g;

function plain(text: string | undefined): string {
  return (text ?? "").replace(ansi, "");
}

const generation = "20261124T090000000Z-0a1b2c3d";
const now = new Date("2026-11-24T10:15:00Z");

function database(name: string, overrides: Partial<ListedDatabase> = {}): ListedDatabase {
  return {
    name,
    generations: 1,
    snapshots: 1,
    segments: 2,
    latestTxid: 42,
    latestSnapshot: {
      key: `${name}/generations/${generation}/snapshots/0000000000000000.db`,
      generation,
      txid: 0,
      size: 3 * 1024 * 1024,
      created: "2026-11-24T09:00:01Z",
      sha256: "3f2a9c1b7d0e55aa66bb77cc88dd99ee00ff11223344556677889900aabbccdd",
    },
    lastUpdate: "2026-11-24T10:10:00Z",
    ...overrides,
  };
}

const points: RestorePoint[] = [
  {
    generation,
    kind: "snapshot",
    key: `app.db/generations/${generation}/snapshots/0000000000000000.db`,
    txidFirst: 0,
    txidLast: 0,
    size: 3 * 1024 * 1024,
    time: "2026-11-24T09:00:01Z",
  },
  {
    generation,
    kind: "wal",
    key: `app.db/generations/${generation}/wal/0000000000000001-0000000000000014.wal`,
    txidFirst: 1,
    txidLast: 20,
    size: 40960,
    time: "2026-11-24T09:30:00Z",
  },
  {
    generation,
    kind: "wal",
    key: `app.db/generations/${generation}/wal/0000000000000015-000000000000002a.wal`,
    txidFirst: 21,
    txidLast: 42,
    size: 81920,
    time: "2026-11-24T10:10:00Z",
  },
];

function fakeStorage(location = "file:///srv/backups"): Storage {
  return { location, close() {} } as unknown as Storage;
}

function restoreResult(options: RestoreOptions): RestoreResult {
  return {
    db: "app.db",
    output: options.output.startsWith("/")
      ? options.output
      : `/home/op/${options.output.replace(/^\.\//, "")}`,
    generation,
    snapshot: {
      key: points[0].key,
      sha256: "3f2a9c1b7d0e55aa66bb77cc88dd99ee00ff11223344556677889900aabbccdd",
      size: 3145728,
      txid: 0,
    },
    segments: [{ key: points[1].key, sha256: "a".repeat(64) }, {
      key: points[2].key,
      sha256: "b".repeat(64),
    }],
    txid: 42,
    bytes: 3145728 + 40960 + 81920,
    integrityCheck: "ok",
    size: 3145728,
  };
}

/** Records what the wizard asked the services to do. */
interface Calls {
  opened: string[];
  restores: { db: string; options: RestoreOptions }[];
  discarded: string[];
  swept: string[];
}

function fakeServices(
  overrides: Partial<WizardServices> = {},
): { services: WizardServices; calls: Calls } {
  const calls: Calls = { opened: [], restores: [], discarded: [], swept: [] };
  const services: WizardServices = {
    openStorage(bucket) {
      calls.opened.push(bucket);
      return Promise.resolve(fakeStorage());
    },
    listDatabases: () =>
      Promise.resolve([database("app.db"), database("billing.db", { latestTxid: 7 })]),
    listRestorePoints: () => Promise.resolve(points),
    probeOutput: () => Promise.resolve([]),
    restore(_storage, db, options) {
      calls.restores.push({ db, options });
      options.onBytes?.(3268608, 3268608);
      return Promise.resolve(restoreResult(options));
    },
    inspect: () =>
      Promise.resolve({
        largest: [{ name: "orders", rows: 120000 }, { name: "customers", rows: 5400 }],
        tableCount: 7,
      }),
    discard(path) {
      calls.discarded.push(path);
      return Promise.resolve();
    },
    sweep(output) {
      calls.swept.push(output);
      return Promise.resolve([]);
    },
    now: () => now,
    ...overrides,
  };
  return { services, calls };
}

/** A mounted wizard and ways to drive it. */
interface Wizard {
  frame(): string;
  press(...sequence: string[]): Promise<void>;
  type(text: string): Promise<void>;
  until(expected: string | RegExp, timeout?: number): Promise<string>;
  exitCode(): number | undefined;
  /** Waits for the wizard to end and returns its exit code. */
  exited(): Promise<number>;
  calls: Calls;
  unmount(): void;
}

const tick = (ms = 15) => new Promise((resolve) => setTimeout(resolve, ms));

async function mount(
  options: { bucket?: string; services?: Partial<WizardServices>; theme?: typeof plainTheme } = {},
): Promise<Wizard> {
  const { services, calls } = fakeServices(options.services);
  let code: number | undefined;
  const app = render(
    <ThemeContext.Provider value={options.theme ?? colorTheme}>
      <App
        services={services}
        bucket={options.bucket}
        cwd="/home/op"
        home="/home/op"
        onExit={(c) => (code = c)}
        progressInterval={10}
      />
    </ThemeContext.Provider>,
  );
  await tick();
  const wizard: Wizard = {
    frame: () => plain(app.lastFrame()),
    async press(...sequence) {
      for (const key of sequence) {
        app.stdin.write(key);
        // A lone Esc is held back briefly by ink in case it starts an escape sequence.
        await tick(key === keys.esc ? 60 : 15);
      }
    },
    async type(text) {
      for (const ch of text) {
        app.stdin.write(ch);
        await tick(2);
      }
      await tick();
    },
    async until(expected, timeout = 2000) {
      const deadline = Date.now() + timeout;
      while (true) {
        const frame = wizard.frame();
        if (typeof expected === "string" ? frame.includes(expected) : expected.test(frame)) {
          // The screen is drawn before its key handlers attach; a key sent at once could be lost.
          await tick();
          return frame;
        }
        if (Date.now() > deadline) {
          throw new Error(`screen never showed ${expected}; last screen:\n${frame}`);
        }
        await tick(10);
      }
    },
    exitCode: () => code,
    async exited() {
      const deadline = Date.now() + 3000;
      while (code === undefined) {
        if (Date.now() > deadline) {
          throw new Error(`the wizard did not end; screen:\n${wizard.frame()}`);
        }
        await tick(10);
      }
      return code;
    },
    calls,
    unmount: () => app.unmount(),
  };
  return wizard;
}

/** Goes from a given bucket to the summary screen, accepting every default. */
async function toSummary(wizard: Wizard): Promise<string> {
  await wizard.until("Choose a database");
  await wizard.press(keys.enter);
  await wizard.until("Choose the point to restore");
  await wizard.press(keys.enter);
  await wizard.until("Where should the restored database go?");
  await wizard.press(keys.enter);
  return await wizard.until("Ready to restore");
}

const uiTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

// ---------------------------------------------------------------------------------------------
// Step 1: where the backups are

uiTest(
  "bucket: without --bucket, the wizard asks for one and lists the accepted forms",
  async () => {
    const w = await mount();
    const frame = await w.until("Where are the backups?");
    assertMatch(frame, /Step 1 of 6/);
    assertMatch(frame, /Bucket:/);
    assertMatch(frame, /s3:\/\/bucket\/prefix, file:\/\/\/abs\/dir or file:\/\/\.\/rel\/dir/);
    w.unmount();
  },
);

uiTest(
  "bucket: a malformed bucket is refused under the prompt and storage is not touched",
  async () => {
    const w = await mount();
    await w.type("ftp://backups");
    await w.press(keys.enter);
    const frame = await w.until("✗");
    assertMatch(frame, /unknown scheme/);
    assertMatch(frame, /Bucket: ftp:\/\/backups/);
    assertEquals(w.calls.opened, []);
    // Editing clears the complaint; a good value opens the bucket.
    await w.press(keys.ctrlU);
    await w.type("file:///srv/backups");
    assertNotMatch(await w.until("Bucket: file:///srv/backups"), /unknown scheme/);
    await w.press(keys.enter);
    await w.until("Choose a database");
    assertEquals(w.calls.opened, ["file:///srv/backups"]);
    w.unmount();
  },
);

uiTest("bucket: an invalid bucket name says what a valid one looks like", async () => {
  const w = await mount();
  await w.type("Not_A_Bucket");
  await w.press(keys.enter);
  const frame = await w.until("✗");
  assertMatch(frame, /not a valid bucket name/);
  w.unmount();
});

uiTest(
  "bucket: a storage error is shown inline, the text kept for fixing, and quitting exits 3",
  async () => {
    const w = await mount({
      bucket: "s3://prod-backups/app",
      services: {
        openStorage: () =>
          Promise.reject(
            new WalsyncError("storage", "cannot reach s3://prod-backups/app: connection refused"),
          ),
      },
    });
    const frame = await w.until("✗");
    assertMatch(frame, /connection refused/);
    assertMatch(frame, /Bucket: s3:\/\/prod-backups\/app/);
    await w.press(keys.ctrlC);
    assertEquals(await w.exited(), 3);
    w.unmount();
  },
);

uiTest("bucket: Esc stops waiting for a storage that does not answer", async () => {
  let answer!: (storage: Storage) => void;
  const w = await mount({
    bucket: "s3://slow-bucket",
    services: { openStorage: () => new Promise((resolve) => (answer = resolve)) },
  });
  await w.until("… Opening s3://slow-bucket");
  await w.press(keys.esc);
  let frame = await w.until("Enter open");
  assertNotMatch(frame, /Opening/);
  // A late answer to the abandoned wait changes nothing.
  answer(fakeStorage());
  await tick(50);
  frame = w.frame();
  assertMatch(frame, /Where are the backups\?/);
  w.unmount();
});

uiTest("bucket: an empty bucket is reported, not shown as an empty list", async () => {
  const w = await mount({
    bucket: "file:///srv/empty",
    services: { listDatabases: () => Promise.resolve([]) },
  });
  const frame = await w.until("✗");
  assertMatch(frame, /no backups found in file:\/\/\/srv\/backups/);
  w.unmount();
});

// ---------------------------------------------------------------------------------------------
// Step 2: which database

uiTest(
  "database: each row shows name, latest backup time, snapshot size and digest prefix",
  async () => {
    const w = await mount({ bucket: "file:///srv/backups" });
    const frame = await w.until("Choose a database");
    assertMatch(frame, /Step 2 of 6/);
    assertMatch(frame, /› app\.db\s+2026-11-24 10:10:00 UTC\s+3\.0 MiB\s+3f2a9c1b7d0e…/);
    assertMatch(frame, /billing\.db/);
    w.unmount();
  },
);

uiTest("database: typing filters a long list; Backspace widens it again", async () => {
  const many = Array.from(
    { length: 40 },
    (_, i) => database(`tenant-${String(i).padStart(2, "0")}.db`),
  );
  many.push(database("payments.db"));
  const w = await mount({
    bucket: "file:///srv/backups",
    services: { listDatabases: () => Promise.resolve(many) },
  });
  let frame = await w.until("41 databases");
  assertMatch(frame, /↓ \d+ more/);
  await w.type("pay");
  frame = await w.until("Filter: pay");
  assertMatch(frame, /1 of 41 match/);
  assertMatch(frame, /› payments\.db/);
  assertNotMatch(frame, /tenant-00/);
  await w.type("x");
  frame = await w.until("No database name contains");
  await w.press(keys.backspace, keys.backspace, keys.backspace, keys.backspace);
  frame = await w.until("41 databases");
  assertMatch(frame, /tenant-00/);
  w.unmount();
});

uiTest("database: a database with no snapshot cannot be chosen, and says why", async () => {
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      listDatabases: () => Promise.resolve([database("new.db", { latestSnapshot: null })]),
    },
  });
  await w.until("no snapshot");
  await w.press(keys.enter);
  const frame = await w.until("✗");
  assertMatch(frame, /new\.db has no snapshot yet/);
  w.unmount();
});

// ---------------------------------------------------------------------------------------------
// Step 3: which point

uiTest(
  "point: the latest backup is preselected, with a typed time and every point below it",
  async () => {
    const w = await mount({ bucket: "file:///srv/backups" });
    await w.until("Choose a database");
    await w.press(keys.enter);
    const frame = await w.until("Choose the point to restore");
    assertMatch(frame, /› Latest backup: txid 42, 2026-11-24 10:10:00 UTC\s+\(default\)/);
    assertMatch(frame, /A time you type \(RFC 3339\)/);
    // Newest first.
    assert(frame.indexOf("txid 21-42") < frame.indexOf("txid 1-20"));
    assert(frame.indexOf("txid 1-20") < frame.indexOf("snapshot  txid 0"));
    w.unmount();
  },
);

uiTest(
  "point: a typed time is checked as it is typed and only a valid one is accepted",
  async () => {
    const w = await mount({ bucket: "file:///srv/backups" });
    await w.until("Choose a database");
    await w.press(keys.enter);
    await w.until("Choose the point to restore");
    await w.press(keys.down, keys.enter);
    await w.until("Restore the state at a time");
    await w.type("2026-11-24T09:45");
    let frame = await w.until("✗");
    assertMatch(frame, /✗ Not RFC 3339 yet; e\.g\. 2026-11-24T10:00:00Z/);
    await w.press(keys.enter); // refused: still here
    assertMatch(w.frame(), /Restore the state at a time/);
    await w.type(":00Z");
    frame = await w.until("✓");
    assertMatch(frame, /Restores the state at 2026-11-24 09:45:00 UTC/);
    await w.press(keys.enter);
    await w.until("Where should the restored database go?");
    await w.press(keys.enter);
    frame = await w.until("Ready to restore");
    assertMatch(frame, /--timestamp 2026-11-24T09:45:00Z/);
    w.unmount();
  },
);

uiTest("point: a time before the oldest backup is refused", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point to restore");
  await w.press(keys.down, keys.enter);
  await w.type("2026-11-23T08:00:00Z");
  const frame = await w.until("✗");
  assertMatch(frame, /✗ Before the oldest backup \(2026-11-24 09:00:00 UTC\); give a later time/);
  w.unmount();
});

uiTest("point: a listed point restores to its txid", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point to restore");
  await w.press(keys.down, keys.down, keys.down); // latest, time, 21-42, 1-20
  await w.until(/› 2026-11-24 09:30:00 UTC\s+wal\s+txid 1-20/);
  await w.press(keys.enter);
  await w.until("Where should the restored database go?");
  await w.press(keys.enter);
  const frame = await w.until("Ready to restore");
  assertMatch(frame, /--txid 20/);
  await w.press(keys.enter);
  await w.until("Restored app.db");
  assertEquals(w.calls.restores[0].options.target, { txid: 20 });
  w.unmount();
});

// ---------------------------------------------------------------------------------------------
// Step 4: where to write

uiTest("output: the default is a new, time-stamped file in the current directory", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point");
  await w.press(keys.enter);
  const frame = await w.until("Where should the restored database go?");
  assertMatch(frame, /File: \.\/app-restored-20261124T101500Z\.db/);
  assertMatch(frame, /Relative paths start in \/home\/op/);
  w.unmount();
});

uiTest("output: an existing file needs an explicit y; Enter alone never replaces it", async () => {
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      probeOutput: (path) =>
        Promise.resolve(
          path === "/var/lib/app/app.db" ? ["/var/lib/app/app.db", "/var/lib/app/app.db-wal"] : [],
        ),
    },
  });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point");
  await w.press(keys.enter);
  await w.until("Where should the restored database go?");
  await w.press(keys.ctrlU);
  await w.type("/var/lib/app/app.db");
  await w.press(keys.enter);
  let frame = await w.until("This would REPLACE");
  assertMatch(frame, /\/var\/lib\/app\/app\.db-wal/);
  assertMatch(frame, /Press y to replace, n to choose another path/);
  await w.press(keys.enter, keys.enter);
  assertMatch(w.frame(), /This would REPLACE/);
  // n: back to editing the path, nothing accepted.
  await w.press("n");
  frame = await w.until("Enter next · Esc back");
  assertNotMatch(frame, /This would REPLACE/);
  assertMatch(frame, /File: \/var\/lib\/app\/app\.db/);
  // Asked again, y accepts, and the summary says what will happen.
  await w.press(keys.enter);
  await w.until("This would REPLACE");
  await w.press("y");
  frame = await w.until("Ready to restore");
  assertMatch(frame, /REPLACES the existing file/);
  assertMatch(frame, /--force/);
  await w.press(keys.enter);
  await w.until("Restored app.db");
  assertEquals(w.calls.restores[0].options.force, true);
  w.unmount();
});

uiTest("output: a path in a missing directory is refused inline", async () => {
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      probeOutput: () =>
        Promise.reject(
          new WalsyncError(
            "usage",
            "directory /nope does not exist; create it or choose another path",
          ),
        ),
    },
  });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point");
  await w.press(keys.enter);
  await w.until("Where should the restored database go?");
  await w.press(keys.enter);
  const frame = await w.until("✗");
  assertMatch(frame, /directory \/nope does not exist/);
  assertMatch(frame, /Where should the restored database go\?/);
  w.unmount();
});

uiTest("output: ~/ means the home directory, as in the shell", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await w.until("Choose a database");
  await w.press(keys.enter);
  await w.until("Choose the point");
  await w.press(keys.enter);
  await w.until("Where should the restored database go?");
  await w.press(keys.ctrlU);
  await w.type("~/restored.db");
  await w.press(keys.enter);
  const frame = await w.until("Ready to restore");
  assertMatch(frame, /To\s+\/home\/op\/restored\.db/);
  w.unmount();
});

// ---------------------------------------------------------------------------------------------
// Step 5 and 6: summary, restore

uiTest("summary: shows the choices and the equivalent scripted command line", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  const frame = await toSummary(w);
  assertMatch(frame, /From\s+file:\/\/\/srv\/backups/);
  assertMatch(frame, /Database\s+app\.db/);
  assertMatch(frame, /Point\s+latest backup \(txid 42/);
  assertMatch(frame, /To\s+\/home\/op\/app-restored-20261124T101500Z\.db/);
  assertMatch(frame, /✓ a new file; nothing existing is touched/);
  assertMatch(frame, /walsync restore app\.db --bucket file:\/\/\/srv\/backups/);
  assertMatch(frame, /-o \.\/app-restored-20261124T101500Z\.db/);
  assertNotMatch(frame, /--force|--txid|--timestamp/);
  w.unmount();
});

uiTest("restore: accepting every default restores the latest backup to a new file", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await toSummary(w);
  await w.press(keys.enter);
  await w.until("Restored app.db");
  assertEquals(w.calls.restores.length, 1);
  const { db, options } = w.calls.restores[0];
  assertEquals(db, "app.db");
  assertEquals(options.output, "./app-restored-20261124T101500Z.db");
  assertEquals(options.force, false);
  assertEquals(options.target, {});
  w.unmount();
});

uiTest("restore: the progress screen shows a bar, bytes, rate and time left", async () => {
  let release!: () => void;
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      async restore(_s, _db, options) {
        options.onBytes?.(512 * 1024, 4 * 1024 * 1024);
        await tick(100);
        options.onBytes?.(1024 * 1024, 4 * 1024 * 1024);
        await new Promise<void>((resolve) => (release = resolve));
        return restoreResult(options);
      },
    },
  });
  await toSummary(w);
  await w.press(keys.enter);
  const frame = await w.until("1.0 MiB of 4.0 MiB");
  assertMatch(frame, /Step 6 of 6: Restoring app\.db/);
  assertMatch(frame, /\[█+░+\]\s+25%/);
  assertMatch(frame, /MiB\/s · about \d+s left/);
  assertMatch(frame, /Ctrl-C cancel/);
  release();
  await w.until("Restored app.db");
  w.unmount();
});

uiTest("restore: Ctrl-C cancels a running restore through cancelled() and exits 130", async () => {
  let sawCancel = false;
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      async restore(_s, _db, options) {
        options.onBytes?.(1024, 4 * 1024 * 1024);
        while (!options.cancelled?.()) await tick(5);
        sawCancel = true;
        throw new WalsyncError("failure", "restore cancelled; nothing was written");
      },
    },
  });
  await toSummary(w);
  await w.press(keys.enter);
  await w.until("Restoring app.db");
  await w.press(keys.ctrlC);
  const frame = await w.until("Restore cancelled");
  assert(sawCancel);
  assertMatch(frame, /\/home\/op\/app-restored-20261124T101500Z\.db was not created/);
  assertEquals(await w.exited(), 130);
  w.unmount();
});

uiTest(
  "restore: a second Ctrl-C stops a stalled restore at once and sweeps its temporary file",
  async () => {
    const w = await mount({
      bucket: "file:///srv/backups",
      // A download that has stalled: no bytes, never settles.
      services: { restore: () => new Promise<RestoreResult>(() => {}) },
    });
    await toSummary(w);
    await w.press(keys.enter);
    await w.until("Restoring app.db");
    await w.press(keys.ctrlC);
    const frame = await w.until("Cancelling");
    assertMatch(frame, /Ctrl-C again: stop without waiting/);
    assertEquals(w.exitCode(), undefined);
    await w.press(keys.ctrlC);
    await w.until("Restore stopped. The temporary file was removed");
    assertEquals(w.calls.swept, ["/home/op/app-restored-20261124T101500Z.db"]);
    assertEquals(await w.exited(), 130);
    w.unmount();
  },
);

uiTest(
  "restore: a cancel that arrives after the restore finished removes the new file",
  async () => {
    let finish!: () => void;
    const w = await mount({
      bucket: "file:///srv/backups",
      services: {
        async restore(_s, _db, options) {
          await new Promise<void>((resolve) => (finish = resolve));
          return restoreResult(options);
        },
      },
    });
    await toSummary(w);
    await w.press(keys.enter);
    await w.until("Restoring app.db");
    await w.press(keys.ctrlC);
    await w.until("Cancelling");
    finish();
    await w.until("Restore cancelled");
    assertEquals(w.calls.discarded, ["/home/op/app-restored-20261124T101500Z.db"]);
    assertEquals(await w.exited(), 130);
    w.unmount();
  },
);

// ---------------------------------------------------------------------------------------------
// The end: result and error screens

uiTest("result: checksum prefix, integrity_check, largest tables and the output path", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await toSummary(w);
  await w.press(keys.enter);
  const frame = await w.until("Restored app.db");
  assertMatch(frame, /✓ Checksum verified: 3f2a9c1b7d0e… \(3 objects/);
  assertMatch(frame, /✓ PRAGMA integrity_check: ok/);
  assertMatch(frame, /Largest tables \(2 of 7\)/);
  assertMatch(frame, /orders\s+120,000 rows/);
  assertMatch(frame, /customers\s+5,400 rows/);
  assertMatch(frame, /Written to \/home\/op\/app-restored-20261124T101500Z\.db/);
  await w.press(keys.enter);
  assertEquals(await w.exited(), 0);
  w.unmount();
});

uiTest(
  "error: a checksum failure names the object, both digests, and what to do next; exit 5",
  async () => {
    const expected = "3f2a9c1b7d0e55aa66bb77cc88dd99ee00ff11223344556677889900aabbccdd";
    const actual = "0000000000000000000000000000000000000000000000000000000000000001";
    const w = await mount({
      bucket: "file:///srv/backups",
      services: {
        restore: () =>
          Promise.reject(integrityError(points[0].key, "SHA256 mismatch", expected, actual)),
      },
    });
    await toSummary(w);
    await w.press(keys.enter);
    const frame = await w.until("CHECKSUM FAILED");
    assertMatch(frame, new RegExp(`Object\\s+${points[0].key.replaceAll(".", "\\.")}`));
    assertMatch(frame, new RegExp(`Expected\\s+${expected}`));
    assertMatch(frame, new RegExp(`Actual\\s+${actual}`));
    assertMatch(
      frame,
      /Nothing was written: \/home\/op\/app-restored-20261124T101500Z\.db was not\s+created/,
    );
    assertMatch(frame, /walsync verify app\.db --bucket\s+file:\/\/\/srv\/backups/);
    assertMatch(frame, /pick an earlier restore point/);
    await w.press("q");
    assertEquals(await w.exited(), 5);
    w.unmount();
  },
);

uiTest("error: Esc on the error screen goes back to choosing a point", async () => {
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      restore: () => Promise.reject(integrityError(points[0].key, "SHA256 mismatch", "a", "b")),
    },
  });
  await toSummary(w);
  await w.press(keys.enter);
  await w.until("CHECKSUM FAILED");
  await w.press(keys.esc);
  await w.until("Choose the point to restore");
  w.unmount();
});

uiTest("error: other failures show their message and exit with their code", async () => {
  const w = await mount({
    bucket: "file:///srv/backups",
    services: {
      restore: () => Promise.reject(new WalsyncError("storage", "s3://prod: access denied")),
    },
  });
  await toSummary(w);
  await w.press(keys.enter);
  const frame = await w.until("Storage error");
  assertMatch(frame, /✗ s3:\/\/prod: access denied/);
  await w.press(keys.ctrlC);
  assertEquals(await w.exited(), 3);
  w.unmount();
});

// ---------------------------------------------------------------------------------------------
// Keys that work everywhere

uiTest("Esc goes back one step at a time, keeping what was chosen", async () => {
  const w = await mount({ bucket: "file:///srv/backups" });
  await w.until("Choose a database");
  await w.press(keys.down, keys.enter); // billing.db
  await w.until("Choose the point");
  await w.press(keys.enter);
  await w.until("Where should the restored database go?");
  await w.press(keys.enter);
  await w.until("Ready to restore");
  await w.press(keys.esc);
  await w.until("Where should the restored database go?");
  await w.press(keys.esc);
  await w.until("Choose the point to restore");
  await w.press(keys.esc);
  let frame = await w.until("Choose a database");
  await w.press(keys.esc);
  frame = await w.until("Where are the backups?");
  assertMatch(frame, /Bucket: file:\/\/\/srv\/backups/);
  assertEquals(w.calls.restores, []);
  w.unmount();
});

uiTest(
  "Ctrl-C quits from any step before the restore with 130 and says nothing was written",
  async () => {
    for (
      const stepTitle of [
        "Where are the backups?",
        "Choose a database",
        "Choose the point",
        "Ready to restore",
      ]
    ) {
      const w = await mount({
        bucket: stepTitle === "Where are the backups?" ? undefined : "file:///srv/backups",
      });
      if (stepTitle === "Ready to restore") await toSummary(w);
      else if (stepTitle === "Choose the point") {
        await w.until("Choose a database");
        await w.press(keys.enter);
      }
      await w.until(stepTitle);
      await w.press(keys.ctrlC);
      const frame = await w.until("Quit.");
      assertMatch(frame, /Nothing was restored and no file was written/);
      assertEquals(await w.exited(), 130, stepTitle);
      assertEquals(w.calls.restores, []);
      w.unmount();
    }
  },
);

uiTest(
  "keys typed ahead for one screen never act on the next, which has not been seen",
  async () => {
    const { services, calls } = fakeServices();
    const app = render(
      <App services={services} bucket="file:///srv/backups" cwd="/home/op" onExit={() => {}} />,
    );
    for (
      let i = 0;
      i < 200 && !plain(app.lastFrame()).includes("Choose a database");
      i++
    ) await tick(10);
    await tick();
    // Five Enters at once would walk through every default to a restore; only the first counts.
    for (let i = 0; i < 5; i++) app.stdin.write(keys.enter);
    for (let i = 0; i < 200 && !plain(app.lastFrame()).includes("Choose the point"); i++) {
      await tick(10);
    }
    await tick(150); // time for any leftover Enter to (wrongly) act
    assertMatch(plain(app.lastFrame()), /Choose the point to restore/);
    assertEquals(calls.restores, []);
    // Ctrl-C typed ahead is never dropped.
    app.stdin.write(keys.enter);
    app.stdin.write(keys.ctrlC);
    for (let i = 0; i < 200 && !plain(app.lastFrame()).includes("Quit."); i++) await tick(10);
    assertMatch(plain(app.lastFrame()), /Quit\. Nothing was restored/);
    app.unmount();
  },
);

uiTest("keys typed ahead in one burst act on the screen as each previous key left it", async () => {
  const many = [database("billing.db"), database("orders.db"), database("payments.db")];
  const { services, calls } = fakeServices({ listDatabases: () => Promise.resolve(many) });
  const app = render(
    <App services={services} bucket="file:///srv/backups" cwd="/home/op" onExit={() => {}} />,
  );
  const burst = (...sequence: string[]) => {
    // Same tick, no waiting: what a slow SSH link delivers after a pause.
    for (const key of sequence) app.stdin.write(key);
  };
  const until = async (text: string) => {
    for (let i = 0; i < 200 && !plain(app.lastFrame()).includes(text); i++) await tick(10);
    assertMatch(plain(app.lastFrame()), new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await tick();
  };
  await until("Choose a database");
  burst("p", "a", "y", keys.enter);
  await until("Choose the point to restore");
  assertMatch(plain(app.lastFrame()), /payments\.db/);
  burst(keys.down, keys.down, keys.down, keys.enter);
  await until("Where should the restored database go?");
  app.stdin.write(keys.enter);
  await until("Ready to restore");
  assertMatch(plain(app.lastFrame()), /--txid 20/);
  assertEquals(calls.restores, []);
  app.unmount();
});

uiTest(
  "NO_COLOR: screens carry no colour codes and still say everything in symbols and words",
  async () => {
    assertEquals(themeFromEnv({ get: (n) => (n === "NO_COLOR" ? "1" : undefined) }), plainTheme);
    assertEquals(themeFromEnv({ get: () => undefined }), colorTheme);
    const expected = "3f2a9c1b7d0e55aa66bb77cc88dd99ee00ff11223344556677889900aabbccdd";
    const { services } = fakeServices({
      restore: () =>
        Promise.reject(integrityError(points[0].key, "SHA256 mismatch", expected, "f".repeat(64))),
    });
    const app = render(
      <ThemeContext.Provider value={plainTheme}>
        <App services={services} bucket="file:///srv/backups" cwd="/home/op" onExit={() => {}} />
      </ThemeContext.Provider>,
    );
    const frames: string[] = [];
    const until = async (text: string) => {
      for (let i = 0; i < 200 && !plain(app.lastFrame()).includes(text); i++) await tick(10);
      await tick();
      frames.push(app.lastFrame() ?? "");
    };
    await until("Choose a database");
    for (
      const next of ["Choose the point", "Where should", "Ready to restore", "CHECKSUM FAILED"]
    ) {
      app.stdin.write(keys.enter);
      await until(next);
    }
    assertEquals(frames.length, 5);
    assertMatch(plain(frames.at(-1)), /✗ A backup object does not match its checksum/);
    // ink only emits colour when its chalk thinks the output is a colour terminal (under
    // `deno test`, only with FORCE_COLOR=1); then the plain theme must still emit none.
    const probe = render(<Text color="red">x</Text>);
    const colourOn = (probe.lastFrame() ?? "").includes("\x1b[");
    probe.unmount();
    for (const frame of frames) {
      // deno-lint-ignore no-control-regex
      if (colourOn) assertNotMatch(frame, /\x1b\[(3\d|9\d|4\d)(;\d+)*m/, frame);
    }
    app.unmount();
  },
);

// ---------------------------------------------------------------------------------------------
// The pieces underneath

Deno.test("the scripted command quotes what a shell would split, and wraps with backslashes", () => {
  const words = scriptedCommand({
    db: "app.db",
    bucket: "file:///srv/my backups",
    output: "./app-restored-20261124T101500Z.db",
    txid: 42,
    force: true,
    endpoint: "http://127.0.0.1:9000",
  });
  assertEquals(words, [
    "walsync",
    "restore",
    "app.db",
    "--bucket",
    "'file:///srv/my backups'",
    "--endpoint",
    "http://127.0.0.1:9000",
    "-o",
    "./app-restored-20261124T101500Z.db",
    "--txid",
    "42",
    "--force",
  ]);
  const lines = commandLines(words, 60);
  for (const line of lines) assert(line.length <= 60, line);
  for (const line of lines.slice(0, -1)) assert(line.endsWith(" \\"), line);
  // No option is separated from its value.
  for (const line of lines) assertNotMatch(line, /(--bucket|--endpoint|-o|--txid) \\$/);
  assertEquals(shellQuote("it's"), `'it'\\''s'`);
});

Deno.test("the default output is a new file named after the database and the UTC time", () => {
  assertEquals(defaultOutputPath("app.db", now), "./app-restored-20261124T101500Z.db");
  assertEquals(defaultOutputPath("data.sqlite3", now), "./data-restored-20261124T101500Z.db");
  assertEquals(defaultOutputPath("my app", now), "./my_app-restored-20261124T101500Z.db");
  assertEquals(expandHome("~/x.db", "/home/op"), "/home/op/x.db");
  assertEquals(expandHome("./~x.db", "/home/op"), "./~x.db");
});

Deno.test("every time the wizard accepts, `walsync restore --timestamp` accepts too", () => {
  const samples = [
    "2026-11-24T10:00:00Z",
    "2026-11-24T10:00Z",
    "2026-11-24T12:00:00+02:00",
    "2026-11-24T10:00:00.250Z",
    "2026-11-24 10:00:00Z",
    "2026-11-24T10:00:00",
    "2026-11-24",
    "yesterday",
    "2026-13-40T99:00:00Z",
  ];
  for (const text of samples) {
    const wizard = checkTimestamp(text).ok;
    let cli: boolean;
    try {
      parseTarget({ timestamp: text });
      cli = true;
    } catch {
      cli = false;
    }
    assertEquals(wizard, cli, text);
  }
});

Deno.test("the line editor inserts at the cursor, erases leftwards, and ignores control keys", () => {
  const key = (k: Record<string, boolean> = {}) => ({
    upArrow: false,
    downArrow: false,
    leftArrow: false,
    rightArrow: false,
    pageDown: false,
    pageUp: false,
    home: false,
    end: false,
    return: false,
    escape: false,
    ctrl: false,
    shift: false,
    tab: false,
    backspace: false,
    delete: false,
    meta: false,
    super: false,
    hyper: false,
    capsLock: false,
    numLock: false,
    ...k,
  });
  let line = { value: "ac", cursor: 1 };
  line = editLine(line, "b", key())!;
  assertEquals(line, { value: "abc", cursor: 2 });
  line = editLine(line, "", key({ delete: true }))!; // DEL from Backspace
  assertEquals(line, { value: "ac", cursor: 1 });
  line = editLine(line, "x\ny", key())!; // a paste with a line break
  assertEquals(line, { value: "axyc", cursor: 3 });
  assertEquals(editLine(line, "\r", key({ return: true })), null);
  assertEquals(editLine(line, "c", key({ ctrl: true })), null);
  assertEquals(editLine(line, "u", key({ ctrl: true })), { value: "c", cursor: 0 });
});

Deno.test("the progress line gives bytes, rate and time left; the bar needs no colour", () => {
  assertEquals(progressBar(0.5, 10), "[█████░░░░░]");
  assertEquals(
    progressLine({ done: 10 * 1024 * 1024, total: 40 * 1024 * 1024, startedAt: 0, at: 2000 }),
    "10.0 MiB of 40.0 MiB · 5.0 MiB/s · about 6s left",
  );
});

Deno.test("quitting exits 130 before a restore, 0 after one, and the error's code on an error", () => {
  let state = initialState("file:///srv/backups");
  assertEquals(quitCode(state), 130);
  state = wizardReducer(state, {
    type: "bucketFailed",
    failure: { kind: "storage", exitCode: 3, message: "unreachable" },
  });
  assertEquals(quitCode(state), 3);
  state = { ...state, step: "failed", failure: { kind: "integrity", exitCode: 5, message: "bad" } };
  assertEquals(quitCode(state), 5);
  assertEquals(wizardReducer(state, { type: "back" }).step, "point");
  assertEquals(quitCode({ ...state, step: "result" }), 0);
});

Deno.test("sweeping removes only the temporary files of a restore into that output", async () => {
  const { realServices } = await import("../../tui/services.ts");
  const dir = await Deno.makeTempDir({ prefix: "walsync-tui-" });
  try {
    const keep = [
      "app.db",
      "restored.db",
      ".other.db.walsync-0123abcd.tmp",
      ".restored.db.walsync-notes.txt",
    ];
    const gone = [".restored.db.walsync-0123abcd.tmp", ".restored.db.walsync-0123abcd.tmp-wal"];
    for (const name of [...keep, ...gone]) await Deno.writeTextFile(`${dir}/${name}`, "x");
    const removed = await realServices({}).sweep(`${dir}/restored.db`);
    assertEquals(removed.sort(), gone.map((name) => `${dir}/${name}`).sort());
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), keep.sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the row report opens the restored file read-only and leaves no -wal or -shm beside it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "walsync-tui-" });
  try {
    const path = `${dir}/restored.db`;
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA journal_mode=WAL;
      CREATE TABLE big(id INTEGER PRIMARY KEY, pad TEXT);
      CREATE TABLE small(x); CREATE TABLE "odd ""name"""(y);
      WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
      INSERT INTO big SELECT i, hex(randomblob(50)) FROM c;
      INSERT INTO small SELECT hex(randomblob(50)) FROM big LIMIT 200;`);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const report = tableReport(path, 2);
    assertEquals(report.tableCount, 3);
    assertEquals(report.largest.map((t) => [t.name, t.rows]), [["big", 3000], ["small", 200]]);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(names, ["restored.db"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
