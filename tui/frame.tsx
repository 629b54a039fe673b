/**
 * The layout every screen shares, sized for an 80x24 terminal: a title with the step number,
 * a line saying what has been chosen so far, the screen's content, and the keys that work.
 * @module
 */
import { Box, Text, useStdout } from "ink";
import type { ReactNode } from "react";
import { truncate } from "./format.ts";
import { useTheme } from "./theme.tsx";

/** Steps counted in the title. */
export const stepCount = 6;

/** Props of {@link Frame}. */
export interface FrameProps {
  /** What this screen is for, e.g. "Choose a database". */
  title: string;
  /** 1-based step number, or none for the result and error screens. */
  step?: number;
  /** What has been chosen so far, one line. */
  context?: string;
  /** Keys that work here, e.g. "Enter choose · Esc back · Ctrl-C quit"; none once the wizard ended. */
  hints?: string | null;
  /** Colour of the title (the error screen is red). */
  titleColor?: string;
  /** The screen. */
  children: ReactNode;
}

/** Columns the wizard uses: the terminal's, at most 80 (every screen is laid out for 80). */
export function useScreenWidth(): number {
  const { stdout } = useStdout();
  return Math.max(40, Math.min(stdout.columns || 80, 80));
}

/** Lays out one screen. */
export function Frame(props: FrameProps): ReactNode {
  const theme = useTheme();
  const width = useScreenWidth();
  const step = props.step === undefined ? "" : `Step ${props.step} of ${stepCount}: `;
  return (
    <Box flexDirection="column" width={width} paddingX={1}>
      <Text bold color={props.titleColor ?? theme.accent}>
        {truncate(`walsync restore · ${step}${props.title}`, width - 2)}
      </Text>
      <Text color={theme.muted}>{truncate(props.context ?? "", width - 2) || " "}</Text>
      <Text color={theme.muted}>{"─".repeat(width - 2)}</Text>
      <Box flexDirection="column">{props.children}</Box>
      {props.hints
        ? (
          <Box marginTop={1}>
            <Text color={theme.muted}>{props.hints}</Text>
          </Box>
        )
        : null}
    </Box>
  );
}
