/**
 * The import rule of docs/architecture.md: every module under `src/` (and the wizard in `tui/`)
 * belongs to the layer its folder names, and imports only from its own layer or the layers below
 * it. Imports are found with a regular expression (static `import`/`export ... from`, `import()`
 * and `typeof import()`), which is enough for this codebase's plain specifiers.
 *
 * Before the move into layer folders (no `src/support/` yet) the tests are skipped.
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The layers, lowest first: a module may import from its own layer and any earlier one. */
const layers = [
  "support",
  "format",
  "storage",
  "history",
  "ops",
  "watch",
  "service",
  "tui",
  "cli",
] as const;

type Layer = typeof layers[number];

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), "..", ".."));
const moved = (() => {
  try {
    return Deno.statSync(join(root, "src", "support")).isDirectory;
  } catch {
    return false;
  }
})();
const skipped = moved ? "" : " (skipped: src/support/ does not exist yet, src/ is still flat)";

/** The layer of a repository-relative path, or undefined when it is outside `src/` and `tui/`. */
function layerOf(path: string): Layer | "none" | undefined {
  if (path.startsWith("tui/")) return "tui";
  if (!path.startsWith("src/")) return undefined;
  const folder = path.split("/")[1];
  return (layers as readonly string[]).includes(folder) && path.split("/").length > 2
    ? folder as Layer
    : "none";
}

/** Every .ts/.tsx file under a folder, repository-relative. */
function sourceFiles(folder: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(join(root, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (/\.tsx?$/.test(entry.name)) found.push(path);
    }
  };
  walk(folder);
  return found.sort();
}

const importPatterns = [
  /\bfrom\s*["'](\.{1,2}\/[^"']+)["']/g,
  /\bimport\s*\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
  /\bimport\s+["'](\.{1,2}\/[^"']+)["']/g,
];

/** The relative imports of one file, resolved to repository-relative paths. */
function importsOf(path: string): { specifier: string; target: string }[] {
  const code = Deno.readTextFileSync(join(root, path))
    .replace(/\/\*[\s\S]*?\*\//g, "") // JSDoc may show imports in examples
    .replace(/^\s*\/\/.*$/gm, "");
  const found: { specifier: string; target: string }[] = [];
  for (const pattern of importPatterns) {
    for (const match of code.matchAll(pattern)) {
      const target = relative(root, join(root, dirname(path), match[1]));
      found.push({ specifier: match[1], target });
    }
  }
  return found;
}

function modules(): string[] {
  return [...sourceFiles("src"), ...sourceFiles("tui")];
}

Deno.test({
  name: `layers: every module under src/ is in a layer folder${skipped}`,
  ignore: !moved,
  fn() {
    const outside = modules().filter((path) => layerOf(path) === "none");
    assert.deepEqual(outside, [], `not in a layer folder (${layers.join(", ")})`);
  },
});

Deno.test({
  name: `layers: no module imports from a layer above its own${skipped}`,
  ignore: !moved,
  fn() {
    const violations: string[] = [];
    for (const path of modules()) {
      const from = layerOf(path) as Layer;
      for (const { specifier, target } of importsOf(path)) {
        const to = layerOf(target);
        if (to === undefined || to === "none") continue;
        if (layers.indexOf(to) > layers.indexOf(from)) {
          violations.push(`${path} (${from}) imports "${specifier}" (${to})`);
        }
      }
    }
    assert.deepEqual(violations, [], "lower layers must not import higher ones");
  },
});

Deno.test({
  name: `layers: no import cycles between layers or between modules${skipped}`,
  ignore: !moved,
  fn() {
    const layerEdges = new Map<string, Set<string>>();
    const fileEdges = new Map<string, Set<string>>();
    for (const path of modules()) {
      const from = layerOf(path) as string;
      for (const { target } of importsOf(path)) {
        const to = layerOf(target);
        if (to === undefined) continue;
        if (to !== from) addEdge(layerEdges, from, to);
        addEdge(fileEdges, path, target);
      }
    }
    assert.deepEqual(findCycle(layerEdges), [], "layers import each other in a cycle");
    assert.deepEqual(findCycle(fileEdges), [], "modules import each other in a cycle");
  },
});

function addEdge(edges: Map<string, Set<string>>, from: string, to: string): void {
  const targets = edges.get(from) ?? new Set<string>();
  targets.add(to);
  edges.set(from, targets);
}

/** One cycle in a directed graph as the list of its nodes, or [] when there is none. */
function findCycle(edges: Map<string, Set<string>>): string[] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] => {
    if (state.get(node) === "done") return [];
    if (state.get(node) === "open") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle.length > 0) return cycle;
    }
    stack.pop();
    state.set(node, "done");
    return [];
  };
  for (const node of edges.keys()) {
    const cycle = visit(node);
    if (cycle.length > 0) return cycle;
  }
  return [];
}
