/**
 * Step 6: the restore running: a bar, bytes, rate and time left. The wizard redraws it a few
 * times a second at most (see `restore_run.ts`), which keeps a slow SSH link responsive.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import { formatBytes } from "../src/support/progress.ts";
import { formatDuration } from "./format.ts";
import { Frame } from "./frame.tsx";
import type { RestoreProgress } from "./state.ts";
import { useTheme } from "./theme.tsx";

/** Props of {@link RestoreStep}. */
export interface RestoreStepProps {
  /** Context line. */
  context: string;
  /** Database name. */
  db: string;
  /** Absolute output path. */
  output: string;
  /** Bytes so far. */
  progress: RestoreProgress;
  /** Ctrl-C was pressed: stopping and removing the temporary file. */
  cancelling: boolean;
}

/** `[#########---------]`-style bar, `width` cells wide, in characters that need no colour. */
export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`;
}

/** One line: bytes done of total, rate, time left. */
export function progressLine(progress: RestoreProgress): string {
  const seconds = (progress.at - progress.startedAt) / 1000;
  const rate = seconds > 0.05 ? progress.done / seconds : 0;
  const parts = [
    progress.total > 0
      ? `${formatBytes(progress.done)} of ${formatBytes(progress.total)}`
      : formatBytes(progress.done),
  ];
  if (rate > 0) parts.push(`${formatBytes(rate)}/s`);
  if (rate > 0 && progress.total > progress.done) {
    parts.push(`about ${formatDuration((progress.total - progress.done) / rate)} left`);
  }
  return parts.join(" · ");
}

/** The progress screen. */
export function RestoreStep(props: RestoreStepProps): ReactNode {
  const theme = useTheme();
  const { progress } = props;
  const fraction = progress.total > 0 ? progress.done / progress.total : 0;
  const downloaded = progress.total > 0 && progress.done >= progress.total;
  return (
    <Frame
      title={`Restoring ${props.db}`}
      step={6}
      context={props.context}
      hints={props.cancelling
        ? "Ctrl-C again: stop without waiting"
        : "Ctrl-C cancel (nothing is kept)"}
    >
      <Text>{`To ${props.output}`}</Text>
      <Box marginTop={1}>
        <Text>
          {progressBar(fraction, 50)} {`${Math.floor(fraction * 100)}%`.padStart(4)}
        </Text>
      </Box>
      <Text>{progress.total > 0 ? progressLine(progress) : "Starting…"}</Text>
      <Box marginTop={1} flexDirection="column">
        {downloaded
          ? (
            <Text>
              … All bytes downloaded and their SHA256 checked; running PRAGMA integrity_check
            </Text>
          )
          : <Text>… Downloading; each object's SHA256 is checked as it streams</Text>}
        <Text color={theme.muted}>
          The restore writes a hidden temporary file; it becomes the output only once verified.
        </Text>
      </Box>
      {props.cancelling
        ? (
          <Box marginTop={1}>
            <Text color={theme.warn} bold>
              ⚠ Cancelling: stopping and removing the temporary file…
            </Text>
          </Box>
        )
        : null}
    </Frame>
  );
}
