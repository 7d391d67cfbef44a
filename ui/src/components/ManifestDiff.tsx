// A diff of two YAML texts, side by side or unified (Argo CD's "inline" diff), with the lines
// of ignored fields marked: shown, but greyed and labelled, since they do not count.

import { useMemo, useState } from "react";
import { diffRows, linePointers, sideBySide, under, type DiffRow } from "../manifestDiff";

export function ManifestDiff({
  before,
  after,
  beforeTitle,
  afterTitle,
  ignored = [],
}: {
  before: string;
  after: string;
  beforeTitle: string;
  afterTitle: string;
  /** JSON pointers of fields left out of the comparison. */
  ignored?: string[];
}) {
  // Side by side needs room: phones start unified.
  const [unified, setUnified] = useState(() => window.matchMedia("(max-width: 48rem)").matches);
  const rows = useMemo(() => diffRows(before, after), [before, after]);
  const isIgnored = useMemo(() => {
    if (ignored.length === 0) return () => false;
    const oldPointers = linePointers(before);
    const newPointers = linePointers(after);
    return (row: DiffRow | undefined) =>
      !!row &&
      ((row.oldLine !== undefined && under(oldPointers[row.oldLine - 1], ignored)) ||
        (row.newLine !== undefined && under(newPointers[row.newLine - 1], ignored)));
  }, [before, after, ignored]);

  return (
    <div className="manifest-diff" data-view={unified ? "unified" : "split"}>
      <div role="group" aria-label="Diff layout" className="views">
        <button aria-pressed={!unified} onClick={() => setUnified(false)}>
          Side by side
        </button>
        <button aria-pressed={unified} onClick={() => setUnified(true)}>
          Unified
        </button>
      </div>
      {unified ? (
        <table className="diff" data-testid="diff">
          <colgroup>
            <col className="number" />
            <col className="number" />
            <col />
          </colgroup>
          <thead>
            <tr>
              <th colSpan={3}>
                − {beforeTitle} / + {afterTitle}
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => (
              <tr key={i} className={row.kind} data-ignored={isIgnored(row) || undefined}>
                <td className="line">{row.oldLine}</td>
                <td className="line">{row.newLine}</td>
                <Cell row={row} ignored={isIgnored(row)} sign />
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <table className="diff split" data-testid="diff">
          <colgroup>
            <col className="number" />
            <col />
            <col className="number" />
            <col />
          </colgroup>
          <thead>
            <tr>
              <th colSpan={2}>{beforeTitle}</th>
              <th colSpan={2}>{afterTitle}</th>
            </tr>
          </thead>
          <tbody>
            {sideBySide(rows).map(([left, right], i) => (
              <tr key={i} data-ignored={isIgnored(left) || isIgnored(right) || undefined}>
                <td className="line">{left?.oldLine}</td>
                <Cell row={left} ignored={isIgnored(left)} />
                <td className="line">{right?.newLine}</td>
                <Cell row={right} ignored={isIgnored(right)} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Cell({
  row,
  ignored,
  sign,
}: {
  row?: DiffRow;
  ignored: boolean;
  sign?: boolean;
}) {
  if (!row) return <td className="code blank" />;
  const prefix = sign ? (row.kind === "added" ? "+" : row.kind === "removed" ? "-" : " ") : "";
  return (
    <td className={`code ${row.kind}${ignored ? " ignored" : ""}`}>
      {prefix}
      {row.text}
      {ignored && (
        <span className="ignored-tag" title="Left out of the comparison by ignoreDifferences">
          ignored
        </span>
      )}
    </td>
  );
}
