/**
 * Colours, or none: with `NO_COLOR` set every screen must still read correctly, so colour only
 * ever repeats what a symbol (✓ ✗ ⚠ ›) or a word already says.
 * @module
 */
import { createContext, useContext } from "react";

/** Colour names for ink's `color` prop; `undefined` means the terminal's default. */
export interface Theme {
  /** Headings and the selected row. */
  accent?: string;
  /** Success: ✓ lines. */
  ok?: string;
  /** Warnings: ⚠ lines. */
  warn?: string;
  /** Failures: ✗ lines and the error screen. */
  error?: string;
  /** Secondary text (hints, columns that matter less). */
  muted?: string;
}

/** Colours for terminals that show them. */
export const colorTheme: Theme = {
  accent: "cyan",
  ok: "green",
  warn: "yellow",
  error: "red",
  muted: "gray",
};

/** No colour at all (`NO_COLOR`). */
export const plainTheme: Theme = {};

/** Picks the theme the environment asks for (https://no-color.org: set and not empty). */
export function themeFromEnv(env: { get(name: string): string | undefined }): Theme {
  const noColor = env.get("NO_COLOR");
  return noColor !== undefined && noColor !== "" ? plainTheme : colorTheme;
}

/** Carries the theme to every component; ink's chalk ignores `NO_COLOR`, so this decides. */
export const ThemeContext = createContext<Theme>(colorTheme);

/** The current theme. */
export function useTheme(): Theme {
  return useContext(ThemeContext);
}
