// What the diff views compute: manifests as YAML, the rows of a line diff, and which lines are
// fields the app's `ignoreDifferences` leaves out of the comparison.

import { diffLines } from "diff";
import { isMap, isPair, isScalar, isSeq, parse, parseDocument, stringify, type Node } from "yaml";

export type RowKind = "same" | "removed" | "added";

/** One line of a diff: from the old text, the new one, or both. */
export interface DiffRow {
  kind: RowKind;
  oldLine?: number;
  newLine?: number;
  text: string;
}

/** A manifest kept as a JSON string by the API, as YAML ("" when absent). */
export function yamlOf(json?: string): string {
  if (!json) return "";
  try {
    return stringify(JSON.parse(json));
  } catch {
    return json;
  }
}

/** The rows of a line diff, line numbers counted from 1 on each side. */
export function diffRows(before: string, after: string): DiffRow[] {
  const rows: DiffRow[] = [];
  let oldLine = 1;
  let newLine = 1;
  for (const change of diffLines(before, after)) {
    const lines = change.value.replace(/\n$/, "").split("\n");
    for (const text of lines) {
      if (change.added) rows.push({ kind: "added", newLine: newLine++, text });
      else if (change.removed) rows.push({ kind: "removed", oldLine: oldLine++, text });
      else rows.push({ kind: "same", oldLine: oldLine++, newLine: newLine++, text });
    }
  }
  return rows;
}

/** Whether any line differs. */
export const changed = (rows: DiffRow[]) => rows.some((row) => row.kind !== "same");

/** Pairs removed and added runs side by side: each pair is [old row, new row], either absent. */
export function sideBySide(rows: DiffRow[]): [DiffRow | undefined, DiffRow | undefined][] {
  const pairs: [DiffRow | undefined, DiffRow | undefined][] = [];
  let removed: DiffRow[] = [];
  let added: DiffRow[] = [];
  const flush = () => {
    for (let i = 0; i < Math.max(removed.length, added.length); i++) {
      pairs.push([removed[i], added[i]]);
    }
    removed = [];
    added = [];
  };
  for (const row of rows) {
    if (row.kind === "removed") removed.push(row);
    else if (row.kind === "added") added.push(row);
    else {
      flush();
      pairs.push([row, row]);
    }
  }
  flush();
  return pairs;
}

/** An RFC 6901 pointer's tokens (`/spec/replicas` → ["spec", "replicas"]). */
export function pointerTokens(pointer: string): string[] {
  if (pointer === "" || pointer === "/") return [];
  return pointer
    .replace(/^\//, "")
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The JSON pointer each line of `yamlText` belongs to (the deepest field starting on it or
 *  spanning it), so lines can be matched with ignored fields. */
export function linePointers(yamlText: string): string[] {
  const starts = [0];
  for (let i = 0; i < yamlText.length; i++) if (yamlText[i] === "\n") starts.push(i + 1);
  const lineOf = (offset: number) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return low;
  };
  const pointers: string[] = starts.map(() => "");
  const mark = (from: number, to: number, pointer: string) => {
    const last = lineOf(Math.max(from, to - 1));
    for (let line = lineOf(from); line <= last; line++) pointers[line] = pointer;
  };
  const escape = (token: string) => token.replace(/~/g, "~0").replace(/\//g, "~1");
  const walk = (node: Node | null | undefined, pointer: string) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        const key = pair.key as Node;
        const value = pair.value as Node | null;
        const here = `${pointer}/${escape(String((pair.key as { value: unknown }).value))}`;
        const end = value?.range?.[1] ?? key.range?.[1] ?? 0;
        mark(key.range?.[0] ?? 0, end, here);
        walk(value, here);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        const child = item as Node;
        const here = `${pointer}/${index}`;
        if (child?.range) mark(child.range[0], child.range[1], here);
        walk(child, here);
      });
    }
  };
  walk(parseDocument(yamlText).contents as Node, "");
  return pointers;
}

/** Whether `pointer` is `ignored` or inside it. */
export function under(pointer: string, ignored: string[]): boolean {
  return ignored.some((root) => pointer === root || pointer.startsWith(`${root}/`));
}

/** `target` with the value at each pointer copied from `source` where `source` has one: the
 *  normalized states lack the ignored fields, the full states still have them. */
export function withFields(target: unknown, source: unknown, pointers: string[]): unknown {
  if (target === undefined || source === undefined) return target;
  const copy = structuredClone(target) as Record<string, unknown>;
  for (const pointer of pointers) {
    const tokens = pointerTokens(pointer);
    let from: unknown = source;
    for (const token of tokens) {
      from = from && typeof from === "object" ? (from as Record<string, unknown>)[token] : undefined;
    }
    if (from === undefined || tokens.length === 0) continue;
    let into: Record<string, unknown> = copy;
    for (const token of tokens.slice(0, -1)) {
      if (!into[token] || typeof into[token] !== "object") into[token] = {};
      into = into[token] as Record<string, unknown>;
    }
    into[tokens[tokens.length - 1]] = from;
  }
  return copy;
}

/** Argo CD's `ignoreDifferences` entry, as the Application carries it. */
export interface IgnoreRule {
  group?: string;
  kind: string;
  name?: string;
  namespace?: string;
  jsonPointers?: string[];
  jqPathExpressions?: string[];
  managedFieldsManagers?: string[];
}

/** A group or kind of a rule: a glob where `*` matches anything. */
function globMatches(pattern: string, value: string): boolean {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`).test(value);
}

/** The rules that apply to one resource (Argo CD's matching: group and kind globs, name and
 *  namespace exact when given). */
export function rulesFor(
  rules: IgnoreRule[],
  resource: { group?: string; kind: string; name: string; namespace?: string },
): IgnoreRule[] {
  return rules.filter(
    (rule) =>
      globMatches(rule.group ?? "", resource.group ?? "") &&
      globMatches(rule.kind, resource.kind) &&
      (!rule.name || rule.name === resource.name) &&
      (!rule.namespace || rule.namespace === (resource.namespace ?? "")),
  );
}

/** The system-wide rules of argocd-cm's resource customizations (the settings'
 *  `resourceOverrides`), as ignoreDifferences entries: `group/Kind` or `Kind` keys, the rules
 *  themselves YAML text. Text that does not parse adds no rule. */
export function systemRules(overrides: Record<string, { ignoreDifferences?: string }>): IgnoreRule[] {
  return Object.entries(overrides).flatMap(([key, override]) => {
    const [group, kind] = key.includes("/") ? key.split("/", 2) : ["", key];
    try {
      const rules = (parse(override.ignoreDifferences ?? "") ?? {}) as Partial<IgnoreRule>;
      return [
        {
          group,
          kind,
          jsonPointers: rules.jsonPointers ?? [],
          jqPathExpressions: rules.jqPathExpressions ?? [],
          managedFieldsManagers: rules.managedFieldsManagers ?? [],
        },
      ];
    } catch {
      return [];
    }
  });
}
