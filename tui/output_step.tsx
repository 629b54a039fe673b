/**
 * Step 4: where the restored database goes. The default is a new file; a path that already
 * exists needs a second, explicit `y` before it may be replaced.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import { Frame } from "./frame.tsx";
import { TextField } from "./text_field.tsx";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link OutputStep}. */
export interface OutputStepProps {
  /** Context line (bucket, database, point). */
  context: string;
  /** The path as typed. */
  value: string;
  /** The directory relative paths are taken from. */
  cwd: string;
  /** What is being waited for, or null. */
  busy: string | null;
  /** Why the path cannot be used, or null. */
  error: string | null;
  /** Files a restore to this path would replace; non-null while asking whether to. */
  existing: string[] | null;
  /** Text changed. */
  onChange: (value: string) => void;
  /** Enter on the path. */
  onSubmit: (value: string) => void;
  /** `y`: replace the existing files. */
  onConfirm: () => void;
  /** `n` or Esc while asked: keep them, edit the path. */
  onDecline: () => void;
  /** Esc on the path. */
  onBack: () => void;
}

/** The output path prompt and the overwrite question. */
export function OutputStep(props: OutputStepProps): ReactNode {
  const theme = useTheme();
  const asking = props.existing !== null;

  useKeys((input, key) => {
    if (asking) {
      if (input === "y" || input === "Y") props.onConfirm();
      else if (input === "n" || input === "N" || key.escape) props.onDecline();
      return;
    }
    if (key.escape) props.onBack();
  }, props.busy === null);

  return (
    <Frame
      title="Where should the restored database go?"
      step={4}
      context={props.context}
      hints={props.busy
        ? "Esc stop waiting · Ctrl-C quit"
        : asking
        ? "y replace · n keep it and choose another path · Ctrl-C quit"
        : "Enter next · Esc back · Ctrl-C quit"}
    >
      <Box>
        <Box marginRight={1}>
          <Text bold>File:</Text>
        </Box>
        <TextField
          value={props.value}
          onChange={props.onChange}
          onSubmit={props.onSubmit}
          active={props.busy === null && !asking}
        />
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text color={theme.muted}>The default is a new file; nothing that exists is touched.</Text>
        <Text color={theme.muted}>Relative paths start in {props.cwd}</Text>
      </Box>
      {props.busy ? <Text>… {props.busy}</Text> : null}
      {props.error && !props.busy
        ? (
          <Box marginTop={1}>
            <Text color={theme.error}>✗ {props.error}</Text>
          </Box>
        )
        : null}
      {asking
        ? (
          <Box marginTop={1} flexDirection="column">
            <Text color={theme.warn} bold>⚠ This would REPLACE what is already there:</Text>
            {props.existing!.map((path) => (
              <Text key={path} color={theme.warn}>{`    ${path}`}</Text>
            ))}
            <Text>
              Replacing cannot be undone. The old file stays until the restore is verified.
            </Text>
            <Text bold>Replace it? Press y to replace, n to choose another path.</Text>
          </Box>
        )
        : null}
    </Frame>
  );
}
