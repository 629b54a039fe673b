/**
 * A failed restore: which object, what was expected and found, that nothing was written,
 * and what to do next. A checksum failure gets the loudest version.
 * @module
 */
import { Box, Text } from "ink";
import type { ReactNode } from "react";
import { shellQuote } from "./command_line.ts";
import type { Failure } from "./failure.ts";
import { Frame } from "./frame.tsx";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** Props of {@link ErrorStep}. */
export interface ErrorStepProps {
  /** Context line. */
  context: string;
  /** What went wrong. */
  failure: Failure;
  /** Database name. */
  db: string;
  /** `--bucket` value, for the commands to run next. */
  bucket: string;
  /** Absolute output path (not created). */
  output: string;
  /** The output existed and the operator had asked to replace it. */
  force: boolean;
  /** The wizard has ended (no keys are taken any more). */
  final: boolean;
  /** Esc: back to choosing a point. */
  onBack: () => void;
  /** q or Enter: leave. */
  onDone: () => void;
}

const titles: Record<Failure["kind"], string> = {
  integrity: "CHECKSUM FAILED: restore stopped",
  storage: "Storage error: restore stopped",
  usage: "Restore refused",
  database: "Database error: restore stopped",
  failure: "Restore failed",
};

/** The problem alone, without the key and digests the screen already shows on their own lines. */
function problemOf(failure: Failure): string {
  let text = failure.message;
  const key = failure.detail?.key;
  if (key && text.startsWith(`${key}: `)) text = text.slice(key.length + 2);
  const cut = text.indexOf(", expected ");
  return cut >= 0 ? text.slice(0, cut) : text;
}

/** What the operator can do about a failure, most useful first. */
function nextSteps(failure: Failure, verify: string): string[] {
  if (failure.kind === "integrity") {
    return [
      `Check every object of this backup: ${verify}`,
      "Press Esc and pick an earlier restore point (an older snapshot or generation may be intact).",
    ];
  }
  if (failure.kind === "storage") {
    return [
      "Check the network, the credentials (AWS_*) and --endpoint, then press Esc and retry.",
      `${verify} shows whether the backup itself is intact.`,
    ];
  }
  return [
    "Press Esc to choose another point or output path, and retry.",
    `${verify} checks the backup without restoring.`,
  ];
}

/** The error screen. */
export function ErrorStep(props: ErrorStepProps): ReactNode {
  const theme = useTheme();
  const { failure } = props;
  useKeys((input, key) => {
    if (key.escape) props.onBack();
    else if (key.return || input === "q") props.onDone();
  }, !props.final);
  const verify = `walsync verify ${shellQuote(props.db)} --bucket ${shellQuote(props.bucket)}`;
  const integrity = failure.kind === "integrity";
  return (
    <Frame
      title={titles[failure.kind]}
      context={props.context}
      titleColor={theme.error}
      hints={props.final ? null : "Esc back to choose another point · q quit"}
    >
      <Text color={theme.error} bold>
        ✗ {integrity ? "A backup object does not match its checksum." : failure.message}
      </Text>
      {failure.detail
        ? (
          <Box flexDirection="column" marginTop={1}>
            <Text>{`Object    ${failure.detail.key}`}</Text>
            {failure.detail.expected !== undefined
              ? <Text>{`Expected  ${failure.detail.expected}`}</Text>
              : null}
            {failure.detail.actual !== undefined
              ? <Text>{`Actual    ${failure.detail.actual}`}</Text>
              : null}
            <Text color={theme.muted}>{`Problem   ${problemOf(failure)}`}</Text>
          </Box>
        )
        : null}
      <Box marginTop={1}>
        <Text bold>
          {props.force
            ? `✓ Nothing was written: ${props.output} was left as it was.`
            : `✓ Nothing was written: ${props.output} was not created.`}
        </Text>
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text bold>What to do next:</Text>
        {nextSteps(failure, verify).map((text, i) => (
          <Box key={i} marginLeft={2}>
            <Box width={3} flexShrink={0}>
              <Text>{`${i + 1}.`}</Text>
            </Box>
            <Text>{text}</Text>
          </Box>
        ))}
      </Box>
    </Frame>
  );
}
