/**
 * Step 5: what is about to happen, in words and as the equivalent `walsync restore` command
 * line, before anything is written.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import { commandLines } from "./command_line.ts";
import { Frame } from "./frame.tsx";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link SummaryStep}. */
export interface SummaryStepProps {
  /** Where the backups are. */
  location: string;
  /** Database name. */
  db: string;
  /** The chosen point, in words. */
  point: string;
  /** Absolute output path. */
  output: string;
  /** The output exists and will be replaced. */
  force: boolean;
  /** The scripted command, as quoted shell words. */
  command: string[];
  /** Enter: restore. */
  onStart: () => void;
  /** Esc. */
  onBack: () => void;
}

/** The last look before the restore. */
export function SummaryStep(props: SummaryStepProps): ReactNode {
  const theme = useTheme();
  useKeys((_input, key) => {
    if (key.return) props.onStart();
    else if (key.escape) props.onBack();
  });
  const lines = commandLines(props.command, 76);
  return (
    <Frame
      title="Ready to restore"
      step={5}
      context={`Bucket ${props.location} · ${props.db}`}
      hints="Enter restore · Esc back · Ctrl-C quit"
    >
      <Text>{`From      ${props.location}`}</Text>
      <Text>{`Database  ${props.db}`}</Text>
      <Text>{`Point     ${props.point}`}</Text>
      <Text>{`To        ${props.output}`}</Text>
      <Box marginLeft={10}>
        {props.force
          ? <Text color={theme.warn} bold>⚠ REPLACES the existing file (you confirmed with y)</Text>
          : <Text color={theme.ok}>✓ a new file; nothing existing is touched</Text>}
      </Box>
      <Box marginTop={1}>
        <Text>
          Every object's SHA256 is checked and PRAGMA integrity_check must pass before the file
          appears.
        </Text>
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text color={theme.muted}>The same restore as a command:</Text>
        {lines.map((line, i) => <Text key={i}>{`  ${line}`}</Text>)}
      </Box>
    </Frame>
  );
}
