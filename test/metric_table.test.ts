/** The labs' metrics table: aligned text, baselines as columns, misspelt keys and bad values refused. */
import { describe, expect, it } from "vitest";
import { metricTable } from "../src/lab/metric_table";

describe("metricTable", () => {
  const columns = [
    { name: "model", values: { r1: 0.5, r5: 0.91234 } },
    { name: "chance", values: { r1: 0.0033 } },
  ];

  it("prints one aligned line per metric, one column per system, missing values as a dash", () => {
    const text = metricTable(
      [
        { label: "R@1", key: "r1" },
        { label: "R@5 (i→t)", key: "r5" },
      ],
      columns,
      { title: "retrieval" },
    );
    expect(text.split("\n")).toEqual([
      "retrieval",
      "           model  chance",
      "R@1        0.500   0.003",
      "R@5 (i→t)  0.912       —",
    ]);
  });

  it("honours digits", () => {
    expect(metricTable([{ label: "x", key: "r1" }], columns, { digits: 1 }).split("\n")[1]).toBe("x    0.5     0.0");
  });

  it("refuses a key no column has, naming it and the keys there are", () => {
    expect(() => metricTable([{ label: "R@10", key: "r10" }], columns)).toThrow(
      /no column has the metric "r10" \(row "R@10"\); the columns have r1, r5/,
    );
  });

  it("refuses values that are not finite numbers, and empty tables", () => {
    expect(() => metricTable([{ label: "x", key: "a" }], [{ name: "m", values: { a: Number.NaN } }])).toThrow(
      /column "m", metric "a" must be a finite number, got NaN/,
    );
    expect(() => metricTable([], columns)).toThrow(/no rows/);
    expect(() => metricTable([{ label: "x", key: "r1" }], [])).toThrow(/no columns/);
  });
});
