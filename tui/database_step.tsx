/**
 * Step 2: which database. One row each: name, time of the newest backup, snapshot size and
 * the start of its SHA256; typing filters the list (buckets can hold hundreds).
 * @module
 */
import { Box, Text } from "ink";
import { type ReactNode, useState } from "react";
import type { ListedDatabase } from "../src/ops/list.ts";
import { formatBytes } from "../src/support/progress.ts";
import { formatTime, shortDigest, truncate } from "./format.ts";
import { Frame } from "./frame.tsx";
import { type ListRow, moveSelection, SelectList } from "./select_list.tsx";
import { printable } from "./text_field.tsx";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link DatabaseStep}. */
export interface DatabaseStepProps {
  /** Where the databases were found. */
  location: string;
  /** Databases in the bucket. */
  databases: ListedDatabase[];
  /** What is being waited for (reading restore points), or null. */
  busy: string | null;
  /** Why the last choice could not be used, or null. */
  error: string | null;
  /** Enter on a database. */
  onChoose: (database: ListedDatabase) => void;
  /** Esc. */
  onBack: () => void;
}

const listHeight = 10;

/** The time of a database's newest backup: its newest object, else its newest snapshot. */
export function latestBackupTime(db: ListedDatabase): string | undefined {
  return db.lastUpdate ?? db.latestSnapshot?.created;
}

function row(db: ListedDatabase, nameWidth: number): ListRow {
  const snap = db.latestSnapshot;
  const cells = [
    truncate(db.name, nameWidth).padEnd(nameWidth),
    formatTime(latestBackupTime(db)).padEnd(23),
    (snap ? formatBytes(snap.size) : "-").padStart(9),
    snap ? shortDigest(snap.sha256) : "no snapshot",
  ];
  return { id: db.name, label: cells.join("  "), muted: !snap };
}

/** The database list with type-to-filter. */
export function DatabaseStep(props: DatabaseStepProps): ReactNode {
  const theme = useTheme();
  const [filter, setFilter] = useState("");
  const [selected, setSelected] = useState(0);
  const needle = filter.toLowerCase();
  const shown = props.databases.filter((db) => db.name.toLowerCase().includes(needle));
  const current = Math.min(selected, Math.max(0, shown.length - 1));
  const nameWidth = Math.min(24, Math.max(4, ...props.databases.map((db) => db.name.length)));

  useKeys((input, key) => {
    if (key.escape) return props.onBack();
    if (key.return) {
      if (shown[current]) props.onChoose(shown[current]);
      return;
    }
    const moved = moveSelection(current, key, shown.length, listHeight);
    if (moved !== null) return setSelected(moved);
    if (key.backspace || key.delete) {
      setFilter((f) => f.slice(0, -1));
      setSelected(0);
      return;
    }
    if (key.ctrl && input === "u") {
      setFilter("");
      setSelected(0);
      return;
    }
    if (key.ctrl || key.meta || key.tab) return;
    const text = printable(input);
    if (text !== "") {
      setFilter((f) => f + text);
      setSelected(0);
    }
  }, props.busy === null);

  const header = [
    "NAME".padEnd(nameWidth),
    "LATEST BACKUP".padEnd(23),
    "SNAPSHOT".padStart(9),
    "SHA256",
  ];
  return (
    <Frame
      title="Choose a database"
      step={2}
      context={`Bucket ${props.location}`}
      hints={props.busy
        ? "Esc stop waiting · Ctrl-C quit"
        : "↑↓ move · type to filter · Enter choose · Esc back · Ctrl-C quit"}
    >
      <Text>
        {filter === ""
          ? `${props.databases.length} database${
            props.databases.length === 1 ? "" : "s"
          }. Type to filter.`
          : `Filter: ${filter}  (${shown.length} of ${props.databases.length} match; Backspace edits)`}
      </Text>
      <Text color={theme.muted}>{`  ${header.join("  ")}`}</Text>
      {shown.length === 0
        ? (
          <Text color={theme.warn}>
            ⚠ No database name contains “{filter}”. Backspace to edit the filter.
          </Text>
        )
        : (
          <SelectList
            rows={shown.map((db) => row(db, nameWidth))}
            selected={current}
            height={listHeight}
          />
        )}
      {props.busy ? <Text>… {props.busy}</Text> : null}
      {props.error && !props.busy
        ? (
          <Box>
            <Text color={theme.error}>✗ {props.error}</Text>
          </Box>
        )
        : null}
    </Frame>
  );
}
