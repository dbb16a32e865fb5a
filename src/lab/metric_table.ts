/**
 * A metrics table for the labs: one row per metric, one column per model or
 * baseline, so that every number a lab prints stands beside its baselines
 * (LABS.md, "Baselines beside every number"). Plain aligned text, so it reads
 * the same in a notebook, in a terminal and in a stored output that the
 * checker compares number by number.
 *
 * Reference: the result tables of BLIP-2 (Li et al., 2023, Tables 1–5), one
 * row per metric and one column per system.
 */

/** One column: a model or baseline and its metrics by key (a key it lacks prints as `missing`). */
export interface MetricColumn {
  readonly name: string;
  readonly values: Readonly<Record<string, number | undefined>>;
}

/** One row: the label printed and the metric key looked up in every column. */
export interface MetricRow {
  readonly label: string;
  readonly key: string;
}

/** Options of {@link metricTable}. */
export interface MetricTableArgs {
  /** Digits after the decimal point. Default 3. */
  readonly digits?: number;
  /** What a column without the row's metric shows. Default "—". */
  readonly missing?: string;
  /** A line printed above the table. Default none. */
  readonly title?: string;
}

/**
 * The table as text: a header with the column names, then one line per row.
 * Every row's key must exist in at least one column (a misspelt key is an
 * error, not a row of dashes); values must be finite numbers.
 */
export function metricTable(rows: readonly MetricRow[], columns: readonly MetricColumn[], args: MetricTableArgs = {}): string {
  if (!Array.isArray(rows) || rows.length === 0) throw new Error("metricTable: no rows given");
  if (!Array.isArray(columns) || columns.length === 0) throw new Error("metricTable: no columns given");
  const digits = args.digits ?? 3;
  if (!(Number.isInteger(digits) && digits >= 0 && digits <= 10))
    throw new Error(`metricTable: digits must be an integer in 0…10, got ${digits}`);
  const missing = args.missing ?? "—";
  for (const row of rows) {
    if (!columns.some((column) => column.values[row.key] !== undefined)) {
      throw new Error(
        `metricTable: no column has the metric "${row.key}" (row "${row.label}"); the columns have ${[...new Set(columns.flatMap((c) => Object.keys(c.values)))].join(", ")}`,
      );
    }
  }
  const cells = rows.map((row) =>
    columns.map((column) => {
      const value = column.values[row.key];
      if (value === undefined) return missing;
      if (typeof value !== "number" || !Number.isFinite(value))
        throw new Error(`metricTable: column "${column.name}", metric "${row.key}" must be a finite number, got ${value}`);
      return value.toFixed(digits);
    }),
  );
  const labelWidth = Math.max(...rows.map((r) => r.label.length));
  const widths = columns.map((column, c) => Math.max(column.name.length, ...cells.map((line) => line[c].length)));
  const header = [" ".repeat(labelWidth), ...columns.map((column, c) => column.name.padStart(widths[c]))].join("  ");
  const lines = rows.map((row, r) =>
    [row.label.padEnd(labelWidth), ...cells[r].map((cell, c) => cell.padStart(widths[c]))].join("  "),
  );
  return [...(args.title ? [args.title] : []), header, ...lines].join("\n");
}
