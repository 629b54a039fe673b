/**
 * Step 3: which state to restore. The latest is preselected; below it, a time to type
 * (checked as it is typed), then every listed restore point, newest first.
 * @module
 */
import { Box, Text } from "ink";
import { type ReactNode, useState } from "react";
import type { ListedDatabase, RestorePoint } from "../src/ops/list.ts";
import { generationTime } from "../src/format/layout.ts";
import { formatBytes } from "../src/support/progress.ts";
import { formatTime } from "./format.ts";
import { Frame } from "./frame.tsx";
import { type ListRow, moveSelection, SelectList } from "./select_list.tsx";
import type { PointChoice } from "./state.ts";
import { TextField } from "./text_field.tsx";
import { useTheme } from "./theme.tsx";
import { checkTimestamp } from "./timestamp.ts";
import { latestBackupTime } from "./database_step.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link PointStep}. */
export interface PointStepProps {
  /** Where the backups are (for the context line). */
  location: string;
  /** The chosen database. */
  database: ListedDatabase;
  /** Its restore points, in `listRestorePoints` order (oldest first). */
  points: RestorePoint[];
  /** The choice to start on (latest, or what was chosen before going back). */
  choice: PointChoice;
  /** Enter on a point, or on a valid typed time. */
  onChoose: (choice: PointChoice) => void;
  /** Esc on the list. */
  onBack: () => void;
}

const listHeight = 9;

/** How a choice reads on the summary screen. */
export function describeChoice(choice: PointChoice, database: ListedDatabase): string {
  switch (choice.kind) {
    case "latest":
      return `latest backup (txid ${database.latestTxid}, ${
        formatTime(latestBackupTime(database))
      })`;
    case "point":
      return `txid ${choice.point.txidLast} (${
        choice.point.kind === "snapshot" ? "snapshot" : "end of a WAL segment"
      }, ${formatTime(choice.point.time)})`;
    case "timestamp":
      return `state at ${formatTime(choice.text)} (${choice.text})`;
  }
}

function pointLabel(point: RestorePoint, generations: string[]): string {
  const txids = point.kind === "snapshot"
    ? `txid ${point.txidLast}`
    : `txid ${point.txidFirst}-${point.txidLast}`;
  const cells = [
    formatTime(point.time).padEnd(23),
    point.kind.padEnd(8),
    txids.padEnd(17),
    formatBytes(point.size).padStart(9),
  ];
  if (generations.length > 1) cells.push(`gen ${generations.indexOf(point.generation) + 1}`);
  return cells.join("  ");
}

/** The row a choice made earlier sits on: latest 0, typed time 1, then the points. */
function initialRow(choice: PointChoice, newestFirst: RestorePoint[]): number {
  if (choice.kind === "latest") return 0;
  if (choice.kind === "timestamp") return 1;
  const index = newestFirst.findIndex((p) => p.key === choice.point.key);
  return index < 0 ? 0 : index + 2;
}

/** The restore point list, and the typed-time prompt behind its second row. */
export function PointStep(props: PointStepProps): ReactNode {
  const theme = useTheme();
  const newestFirst = [...props.points].reverse();
  const generations = [...new Set(props.points.map((p) => p.generation))].sort();
  const earliest = generations.length > 0 ? generationTime(generations[0]) : undefined;
  const initial = initialRow(props.choice, newestFirst);
  const [selected, setSelected] = useState(initial);
  const [typing, setTyping] = useState(false);
  const [timeText, setTimeText] = useState(
    props.choice.kind === "timestamp" ? props.choice.text : "",
  );
  const verdict = checkTimestamp(timeText, earliest);

  const rows: ListRow[] = [
    {
      id: "latest",
      label: `Latest backup: txid ${props.database.latestTxid}, ${
        formatTime(latestBackupTime(props.database))
      }  (default)`,
    },
    { id: "time", label: "A time you type (RFC 3339)…" },
    ...newestFirst.map((p) => ({ id: p.key, label: pointLabel(p, generations) })),
  ];

  useKeys((_input, key) => {
    if (key.escape) return props.onBack();
    if (key.return) {
      if (selected === 0) return props.onChoose({ kind: "latest" });
      if (selected === 1) return setTyping(true);
      return props.onChoose({ kind: "point", point: newestFirst[selected - 2] });
    }
    const moved = moveSelection(selected, key, rows.length, listHeight);
    if (moved !== null) setSelected(moved);
  }, !typing);

  // Esc in the time prompt goes back to the list, one step, as everywhere else.
  useKeys((_input, key) => {
    if (key.escape) setTyping(false);
  }, typing);

  const context = `Bucket ${props.location} · ${props.database.name}`;
  if (typing) {
    return (
      <Frame
        title="Restore the state at a time"
        step={3}
        context={context}
        hints="Enter use this time · Esc back to the list · Ctrl-C quit"
      >
        <Text>Commits shipped at or before this time are restored. Use Z (UTC) or an offset.</Text>
        <Box marginTop={1}>
          <Box marginRight={1}>
            <Text bold>Time:</Text>
          </Box>
          <TextField
            value={timeText}
            onChange={setTimeText}
            onSubmit={(text) => {
              if (checkTimestamp(text, earliest).ok) {
                props.onChoose({ kind: "timestamp", text: text.trim() });
              }
            }}
            active
            placeholder="2026-11-24T10:00:00Z"
          />
        </Box>
        <Text color={verdict.ok ? theme.ok : timeText === "" ? theme.muted : theme.error}>
          {verdict.ok ? "✓" : timeText === "" ? " " : "✗"} {verdict.message}
        </Text>
        <Box marginTop={1} flexDirection="column">
          <Text color={theme.muted}>
            Oldest backup: {earliest ? formatTime(earliest) : "unknown"}
          </Text>
          <Text color={theme.muted}>
            Newest backup: {formatTime(latestBackupTime(props.database))}
          </Text>
        </Box>
      </Frame>
    );
  }
  return (
    <Frame
      title="Choose the point to restore"
      step={3}
      context={context}
      hints="↑↓ move · Enter choose · Esc back · Ctrl-C quit"
    >
      <Text>
        {`${props.points.length} restore point${props.points.length === 1 ? "" : "s"}${
          generations.length > 1 ? ` in ${generations.length} generations` : ""
        }. The latest is usually what you want.`}
      </Text>
      <SelectList rows={rows} selected={selected} height={listHeight} />
    </Frame>
  );
}
