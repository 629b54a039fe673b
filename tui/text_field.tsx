/**
 * A one-line text input: type, paste, move with ←/→/Home/End, delete with Backspace,
 * Ctrl-U / Ctrl-K / Ctrl-W as in a shell. The value is owned by the caller.
 * @module
 */
import { Text } from "ink";
import type { Key } from "ink";
import { type ReactNode, useRef, useState } from "react";
import { useTheme } from "./theme.tsx";
import { useKeys } from "./keys.tsx";

/** A line being edited: its text and the cursor position in it. */
export interface LineEdit {
  /** Text. */
  value: string;
  /** Cursor, 0..value.length. */
  cursor: number;
}

/** `input` without control characters (a pasted line break, a stray escape). */
export function printable(input: string): string {
  return Array.from(input).filter((ch) => {
    const code = ch.codePointAt(0)!;
    return code >= 0x20 && code !== 0x7f;
  }).join("");
}

/**
 * Applies one key to a line; returns null for keys that are not editing keys (Enter, Esc,
 * arrows up/down, Tab, Ctrl-C), which the caller handles.
 */
export function editLine(line: LineEdit, input: string, key: Key): LineEdit | null {
  const { value } = line;
  const cursor = Math.min(line.cursor, value.length);
  if (
    key.return || key.escape || key.tab || key.upArrow || key.downArrow || key.pageUp ||
    key.pageDown
  ) {
    return null;
  }
  if (key.leftArrow) return { value, cursor: Math.max(0, cursor - 1) };
  if (key.rightArrow) return { value, cursor: Math.min(value.length, cursor + 1) };
  if (key.home || (key.ctrl && input === "a")) return { value, cursor: 0 };
  if (key.end || (key.ctrl && input === "e")) return { value, cursor: value.length };
  // Terminals send DEL (0x7f) for Backspace and ink reports it as `delete`: both erase leftwards.
  if (key.backspace || key.delete) {
    if (cursor === 0) return line;
    return { value: value.slice(0, cursor - 1) + value.slice(cursor), cursor: cursor - 1 };
  }
  if (key.ctrl && input === "u") return { value: value.slice(cursor), cursor: 0 };
  if (key.ctrl && input === "k") return { value: value.slice(0, cursor), cursor };
  if (key.ctrl && input === "w") {
    const start = value.slice(0, cursor).replace(/[^\s/]*[\s/]*$/, "").length;
    return { value: value.slice(0, start) + value.slice(cursor), cursor: start };
  }
  if (key.ctrl || key.meta) return null;
  // A paste arrives as one string; line breaks and other control characters are dropped.
  const text = printable(input);
  if (text === "") return null;
  return {
    value: value.slice(0, cursor) + text + value.slice(cursor),
    cursor: cursor + text.length,
  };
}

/** Props of {@link TextField}. */
export interface TextFieldProps {
  /** Current text. */
  value: string;
  /** Called with the new text after each edit. */
  onChange: (value: string) => void;
  /** Called on Enter. */
  onSubmit: (value: string) => void;
  /** Whether the field takes keys (and shows its cursor). */
  active: boolean;
  /** Shown, dimmed, while the field is empty. */
  placeholder?: string;
}

/** A one-line text input with a visible cursor. */
export function TextField(props: TextFieldProps): ReactNode {
  const theme = useTheme();
  const [cursor, setCursor] = useState(props.value.length);
  // The line being edited is kept here, not only in props: the parent's copy catches up one
  // render later, and the cursor must survive a parent that replaces the text (a default).
  const line = useRef<LineEdit>({ value: props.value, cursor });
  if (line.current.value !== props.value) {
    line.current = { value: props.value, cursor: props.value.length };
  }

  useKeys((input, key) => {
    if (key.return) {
      props.onSubmit(line.current.value);
      return;
    }
    const next = editLine(line.current, input, key);
    if (!next) return;
    const changed = next.value !== line.current.value;
    line.current = next;
    setCursor(next.cursor);
    if (changed) props.onChange(next.value);
  }, props.active);

  const value = props.value;
  const at = Math.min(line.current.cursor, value.length);
  if (!props.active) return <Text>{value}</Text>;
  if (value === "" && props.placeholder) {
    return (
      <Text>
        <Text inverse>{props.placeholder[0]}</Text>
        <Text color={theme.muted} dimColor={theme.muted === undefined}>
          {props.placeholder.slice(1)}
        </Text>
      </Text>
    );
  }
  return (
    <Text>
      {value.slice(0, at)}
      <Text inverse>{value[at] ?? " "}</Text>
      {value.slice(at + 1)}
    </Text>
  );
}
