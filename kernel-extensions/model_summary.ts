/**
 * A summary table for any library model (a `Module` tree): each module down
 * to a depth with its class, its own parameters' shapes, parameter counts
 * (trainable and frozen) and bytes, and totals.
 */
import type { Module } from "../src/nn/module";
import { escapeHtml, Rich } from "./rich";

/** Options for {@link modelSummary}. */
export interface ModelSummaryArgs {
  /** Deepest module level listed (0 = the model only); deeper modules are counted in their ancestor. Default 2. */
  depth?: number;
  /** Title above the table. Default the model's class name. */
  title?: string;
}

/** One row of the summary. */
export interface SummaryRow {
  /** Dotted path ("" for the model). */
  path: string;
  /** The path relative to its parent module ("(model)" for the model). */
  name: string;
  /** Class name. */
  type: string;
  depth: number;
  /** Shapes of the parameters registered directly on this module, by name. */
  shapes: string;
  /** Parameters of the module and everything below it. */
  trainable: number;
  frozen: number;
  bytes: number;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, string: 0 };

/** Rows of the summary (also what the table shows). */
export function summaryRows(model: Module, depth = 2): SummaryRow[] {
  if (!model || typeof (model as Module).namedModules !== "function")
    throw new Error(`modelSummary: expected a library Module, got ${model === null ? "null" : typeof model}`);
  if (!(Number.isInteger(depth) && depth >= 0))
    throw new Error(`modelSummary: depth must be a non-negative integer, got ${depth}`);
  const rows: SummaryRow[] = [];
  const modules = model.namedModules();
  const paths = modules.map(([path]) => path);
  for (const [path, module] of modules) {
    // Depth counts module ancestors (a child may be registered under a dotted name such as "blocks.0").
    const ancestors = paths.filter((other) => other !== path && (other === "" || path.startsWith(other + ".")));
    const level = ancestors.length;
    if (level > depth) continue;
    const all = module.namedParameters();
    const childPaths = module
      .namedModules()
      .slice(1)
      .map(([child]) => child + ".");
    const own = all.filter(([name]) => !childPaths.some((child) => name.startsWith(child)));
    let trainable = 0;
    let frozen = 0;
    let bytes = 0;
    for (const [, variable] of all) {
      if (variable.trainable) trainable += variable.size;
      else frozen += variable.size;
      bytes += variable.size * (BYTES_PER_ELEMENT[variable.dtype] ?? 4);
    }
    const parent = ancestors.reduce((longest, other) => (other.length > longest.length ? other : longest), "");
    const name = path === "" ? "(model)" : parent === "" ? path : path.slice(parent.length + 1);
    rows.push({
      path,
      name,
      type: module.constructor.name,
      depth: level,
      shapes: own.map(([n, v]) => `${n} [${v.shape.join(", ")}]`).join(", "),
      trainable,
      frozen,
      bytes,
    });
  }
  return rows;
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

function size(bytes: number): string {
  return bytes >= 1 << 20
    ? `${(bytes / (1 << 20)).toFixed(2)} MiB`
    : bytes >= 1024
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${bytes} B`;
}

/** The summary table: HTML in the notebook, aligned text elsewhere. */
export function modelSummary(model: Module, args: ModelSummaryArgs = {}): Rich {
  const rows = summaryRows(model, args.depth ?? 2);
  const total = rows[0];
  const title = args.title ?? total.type;
  const header = ["module", "type", "parameters (own)", "trainable", "frozen", "bytes"];
  const cells = rows.map((r) => [
    `${"  ".repeat(r.depth)}${r.name}`,
    r.type,
    r.shapes || "—",
    count(r.trainable),
    count(r.frozen),
    size(r.bytes),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...cells.map((row) => Math.min(row[c].length, c === 2 ? 48 : 1000))));
  const line = (row: string[]) =>
    row
      .map((v, c) =>
        c >= 3 ? v.padStart(widths[c]) : v.length > widths[c] ? v.slice(0, widths[c] - 1) + "…" : v.padEnd(widths[c]),
      )
      .join("  ");
  const totals = `total: ${count(total.trainable + total.frozen)} parameters (${count(total.trainable)} trainable, ${count(total.frozen)} frozen), ${size(total.bytes)}`;
  const text = [title, line(header), ...cells.map(line), totals].join("\n");
  const markup =
    `<div><b>${escapeHtml(title)}</b><table style="font-size:12px;border-collapse:collapse">` +
    `<thead><tr>${header.map((h, c) => `<th style="text-align:${c >= 3 ? "right" : "left"};padding:2px 8px">${h}</th>`).join("")}</tr></thead><tbody>` +
    rows
      .map(
        (r, k) =>
          `<tr${r.trainable === 0 && r.frozen > 0 ? ' style="color:#777"' : ""}>${cells[k].map((v, c) => `<td style="text-align:${c >= 3 ? "right" : "left"};padding:2px 8px;${c === 0 ? `padding-left:${8 + 14 * r.depth}px;font-family:monospace` : ""}">${escapeHtml(c === 0 ? v.trim() : v)}</td>`).join("")}</tr>`,
      )
      .join("") +
    `</tbody></table><div style="font-size:12px">${escapeHtml(totals)}</div></div>`;
  return new Rich({ "text/plain": text, "text/html": markup });
}
