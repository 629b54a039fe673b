/**
 * Keys, one at a time, each after the screen has caught up with the one before.
 *
 * ink hands every key to every `useInput` handler at once, and keys that arrive together (a
 * burst after a pause on a slow SSH link, or typing ahead) all reach the handlers of the
 * screen as it was before the first of them: no render happens in between. Down then Enter
 * would choose the row the cursor just left; Enter, Enter would act twice on one screen.
 * Here a single ink listener queues the keys and hands them out one per render, so each key
 * meets the screen (and the handler) the previous key produced.
 * @module
 */
import { type Key, useInput } from "ink";
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useLayoutEffect,
  useRef,
} from "react";

type Listener = (input: string, key: Key) => void;

interface KeyBus {
  subscribe(listener: Listener): () => void;
  discardPending(): void;
}

const KeyBusContext = createContext<KeyBus | null>(null);

/** Receives the keys and deals them to {@link useKeys} handlers one at a time. */
export function KeyProvider(props: { children: ReactNode }): ReactNode {
  const listeners = useRef(new Set<Listener>());
  const queue = useRef<[string, Key][]>([]);
  const pumping = useRef(false);

  // The first key is handled at once; each further key waits for a timer. React renders what
  // a key changed in a microtask, which runs before any timer, so the next key is handled by
  // the re-rendered screen.
  const pump = useCallback(() => {
    const next = queue.current.shift();
    if (!next) {
      pumping.current = false;
      return;
    }
    for (const listener of [...listeners.current]) listener(next[0], next[1]);
    setTimeout(pump, 0);
  }, []);

  useInput((input, key) => {
    queue.current.push([input, key]);
    if (!pumping.current) {
      pumping.current = true;
      pump();
    }
  });

  const bus = useRef<KeyBus>({
    subscribe(listener) {
      listeners.current.add(listener);
      return () => listeners.current.delete(listener);
    },
    discardPending() {
      // Ctrl-C always survives: it must work whatever was typed before it.
      queue.current = queue.current.filter(([input, key]) => key.ctrl && input === "c");
    },
  });
  return <KeyBusContext.Provider value={bus.current}>{props.children}</KeyBusContext.Provider>;
}

/**
 * Calls `handler` for each key while `active` (default true), always the handler of the
 * latest render. Needs a {@link KeyProvider} above it.
 */
export function useKeys(handler: (input: string, key: Key) => void, active = true): void {
  const bus = useContext(KeyBusContext);
  if (!bus) throw new Error("useKeys needs a KeyProvider above it");
  const current = useRef({ handler, active });
  current.current = { handler, active };
  // Subscribed during the commit (not in a later effect), so the first key after a new
  // screen appears reaches it.
  useLayoutEffect(() =>
    bus.subscribe((input, key) => {
      if (current.current.active) current.current.handler(input, key);
    }), [bus]);
}

/**
 * Drops keys typed ahead whenever `screen` changes, so a key pressed for one screen never
 * acts on the next one, which the operator has not seen yet (Ctrl-C is kept).
 */
export function useDiscardKeysOnChange(screen: string): void {
  const bus = useContext(KeyBusContext);
  if (!bus) throw new Error("useDiscardKeysOnChange needs a KeyProvider above it");
  useLayoutEffect(() => bus.discardPending(), [bus, screen]);
}
