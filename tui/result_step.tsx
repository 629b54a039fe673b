/**
 * The end of a successful restore: what was verified and what the restored database holds,
 * so the operator knows for certain before pointing anything at it.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import type { RestoreResult } from "../src/ops/restore.ts";
import { formatBytes } from "../src/support/progress.ts";
import { formatCount, shortDigest, truncate } from "./format.ts";
import { Frame } from "./frame.tsx";
import type { TableReport } from "./table_report.ts";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link ResultStep}. */
export interface ResultStepProps {
  /** Context line. */
  context: string;
  /** What the restore did. */
  result: RestoreResult;
  /** Row counts of the largest tables, or why they could not be read. */
  tables: TableReport | string | null;
  /** The wizard has ended (no keys are taken any more; the screen stays in the scrollback). */
  final: boolean;
  /** Enter, q or Esc: leave. */
  onDone: () => void;
}

/** The success screen. */
export function ResultStep(props: ResultStepProps): ReactNode {
  const theme = useTheme();
  const { result, tables } = props;
  useKeys((input, key) => {
    if (key.return || key.escape || input === "q") props.onDone();
  }, !props.final);
  const objects = 1 + result.segments.length;
  return (
    <Frame
      title={`Restored ${result.db}`}
      context={props.context}
      titleColor={theme.ok}
      hints={props.final ? null : "Enter or q exit"}
    >
      <Text color={theme.ok} bold>
        ✓ Checksum verified: {shortDigest(result.snapshot.sha256)}
        {` (${objects} object${objects === 1 ? "" : "s"}, ${
          formatBytes(result.bytes)
        }, every SHA256 matched)`}
      </Text>
      <Text color={result.integrityCheck === "ok" ? theme.ok : theme.error} bold>
        {result.integrityCheck === "ok" ? "✓" : "✗"} PRAGMA integrity_check: {result.integrityCheck}
      </Text>
      <Text>{`  State at txid ${result.txid}, generation ${result.generation}`}</Text>
      <Box marginTop={1} flexDirection="column">
        {typeof tables === "string"
          ? <Text color={theme.warn}>⚠ Could not count rows: {tables}</Text>
          : tables === null
          ? null
          : (
            <>
              <Text>
                {tables.tableCount === 0
                  ? "The database has no tables."
                  : `Largest tables (${tables.largest.length} of ${tables.tableCount}):`}
              </Text>
              {tables.largest.map((t) => (
                <Text key={t.name}>
                  {`  ${truncate(t.name, 40).padEnd(40)} ${
                    (t.rows === null
                      ? "unreadable"
                      : `${formatCount(t.rows)} row${t.rows === 1 ? "" : "s"}`).padStart(18)
                  }`}
                </Text>
              ))}
            </>
          )}
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text bold>Written to {result.output}</Text>
        <Text>
          {`  ${formatBytes(result.size)}; the file is complete and closed, safe to copy or move.`}
        </Text>
      </Box>
    </Frame>
  );
}
