/**
 * A list to pick from: a window of rows around the selection, the selected row marked with
 * `›` (readable without colour), and counts of the rows scrolled out of view.
 * @module
 */
import { Box, Text } from "ink";
import type { Key } from "ink";
import type { ReactNode } from "react";
import { useTheme } from "./theme.tsx";

/** One row. */
export interface ListRow {
  /** React key. */
  id: string;
  /** The row's text, already laid out in columns. */
  label: string;
  /** Shown dimmed (a row that cannot be chosen, or a note). */
  muted?: boolean;
}

/** Where the selection goes for a key, or null when the key does not move it. */
export function moveSelection(
  selected: number,
  key: Key,
  count: number,
  page: number,
): number | null {
  if (count === 0) return null;
  let next: number;
  if (key.upArrow) next = selected - 1;
  else if (key.downArrow) next = selected + 1;
  else if (key.pageUp) next = selected - page;
  else if (key.pageDown) next = selected + page;
  else if (key.home) next = 0;
  else if (key.end) next = count - 1;
  else return null;
  return Math.max(0, Math.min(count - 1, next));
}

/** Props of {@link SelectList}. */
export interface SelectListProps {
  /** Rows. */
  rows: ListRow[];
  /** Index of the selected row. */
  selected: number;
  /** Rows shown at once. */
  height: number;
  /** Columns a row may use (longer labels are cut). */
  width?: number;
}

/** Shows a window of rows with the selected one marked. */
export function SelectList(props: SelectListProps): ReactNode {
  const theme = useTheme();
  const { rows, selected, height } = props;
  const width = props.width ?? 76;
  const start = Math.max(0, Math.min(selected - Math.floor(height / 2), rows.length - height));
  const visible = rows.slice(start, start + height);
  const below = rows.length - start - visible.length;
  return (
    <Box flexDirection="column">
      <Text color={theme.muted}>{start > 0 ? `  ↑ ${start} more` : " "}</Text>
      {visible.map((row, i) => {
        const isSelected = start + i === selected;
        const label = row.label.length > width ? `${row.label.slice(0, width - 1)}…` : row.label;
        return (
          <Text
            key={row.id}
            wrap="truncate"
            bold={isSelected}
            color={isSelected ? theme.accent : row.muted ? theme.muted : undefined}
          >
            {isSelected ? "› " : "  "}
            {label}
          </Text>
        );
      })}
      <Text color={theme.muted}>{below > 0 ? `  ↓ ${below} more` : " "}</Text>
    </Box>
  );
}
