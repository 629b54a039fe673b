/**
 * Step 1: where the backups are. A text prompt with the accepted forms; what the storage
 * says when it cannot be opened appears right under it.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import { bucketForms } from "../src/storage/bucket.ts";
import type { Failure } from "./failure.ts";
import { Frame } from "./frame.tsx";
import { TextField } from "./text_field.tsx";
import { useTheme } from "./theme.tsx";

/** Props of {@link BucketStep}. */
export interface BucketStepProps {
  /** The bucket as typed so far. */
  value: string;
  /** What is being waited for (opening the storage), or null. */
  busy: string | null;
  /** Why the last bucket could not be used, or null. */
  error: Failure | null;
  /** Text changed. */
  onChange: (value: string) => void;
  /** Enter: open this bucket. */
  onSubmit: (value: string) => void;
}

/** The bucket prompt. */
export function BucketStep(props: BucketStepProps): ReactNode {
  const theme = useTheme();
  return (
    <Frame
      title="Where are the backups?"
      step={1}
      context="Nothing is written anywhere until you confirm the last step."
      hints={props.busy ? "Esc stop waiting · Ctrl-C quit" : "Enter open · Ctrl-C quit"}
    >
      <Box>
        <Box marginRight={1}>
          <Text bold>Bucket:</Text>
        </Box>
        <TextField
          value={props.value}
          onChange={props.onChange}
          onSubmit={props.onSubmit}
          active={props.busy === null}
          placeholder="s3://bucket/prefix or file:///path/to/backups"
        />
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text color={theme.muted}>Accepted forms:</Text>
        <Text color={theme.muted}>{`  ${bucketForms}`}</Text>
        <Text color={theme.muted}>
          S3 credentials come from AWS_* variables; --endpoint for MinIO, R2, B2.
        </Text>
      </Box>
      {props.busy
        ? (
          <Box marginTop={1}>
            <Text>… {props.busy}</Text>
          </Box>
        )
        : null}
      {props.error && !props.busy
        ? (
          <Box marginTop={1}>
            <Text color={theme.error}>✗ {props.error.message}</Text>
          </Box>
        )
        : null}
    </Frame>
  );
}
