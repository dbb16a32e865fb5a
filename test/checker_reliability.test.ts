/**
 * `mllm-labs check` gives no silent wrong answer (issue 14): integers compare
 * exactly unless a cell says otherwise, a cell that did not run is a
 * difference, and a long report is capped with a summary line that reaches a pipe.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "child_process";
import * as path from "path";
import { compareJson, compareText } from "../src/checker/compare";
import { compareNotebooks, formatReport } from "../src/checker/check";
import { writeNotebook, type Notebook } from "../src/runner/notebook";
import { projectRoot } from "../src/util/project_root";
import { notebook, stdout } from "./helpers/notebook_builder";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

describe("integers compare exactly", () => {
  it("in text: a token id or count one off is a difference even where the tolerance would hide it", () => {
    // rtol 1e-4 of 100000 is 10: the tolerance alone would pass 100001.
    const [difference] = compareText("tokens 100001", "tokens 100000");
    expect(difference.message).toMatch(/got 100001, want the integer 100000 \(integers compare exactly/);
    expect(compareText("ids [5, 7, 9]", "ids [5, 7, 9]")).toEqual([]);
    expect(compareText("count 12.0", "count 12")).toHaveLength(1);
    // Integers too large for a double are still told apart.
    expect(compareText("id 9007199254740993", "id 9007199254740992")).toHaveLength(1);
    // Decimals keep the tolerance; the tag lets integers use it too.
    expect(compareText("loss 0.50001", "loss 0.5")).toEqual([]);
    expect(compareText("tokens 100001", "tokens 100000", { rtol: 1e-4, atol: 1e-6, approxIntegers: true })).toEqual([]);
  });

  it("in JSON: two integers compare exactly, other numbers within the tolerance", () => {
    expect(compareJson({ count: 100001 }, { count: 100000 }).map((d) => d.message)).toEqual([
      "got 100001, want 100000 (integers compare exactly)",
    ]);
    expect(compareJson({ y: 2.00001 }, { y: 2 }, { rtol: 1e-4, atol: 0 })).toEqual([]);
  });

  it("the check-approx-integers tag relaxes one cell", async () => {
    const reference = notebook([
      { source: "a", outputs: [stdout("steps 100000\n")], tags: ["check-approx-integers"] },
      { source: "b", outputs: [stdout("steps 100000\n")] },
    ]);
    const run = notebook([
      { source: "a", outputs: [stdout("steps 100001\n")] },
      { source: "b", outputs: [stdout("steps 100001\n")] },
    ]);
    expect((await compareNotebooks(run, reference)).map((d) => d.cell)).toEqual([2]);
  });
});

describe("a cell that did not run", () => {
  it("is a difference, also where outputs are ignored; an empty cell is not", async () => {
    const reference = notebook([
      { source: "a", outputs: [stdout("1\n")] },
      { source: "b", outputs: [stdout("2\n")], tags: ["check-ignore-output"] },
      { source: "c", outputs: [] },
    ]);
    const run = JSON.parse(JSON.stringify(reference)) as Notebook;
    for (const cell of run.cells.slice(1) as any[]) {
      cell.outputs = [];
      cell.execution_count = null;
    }
    const differences = await compareNotebooks(run, reference);
    expect(differences.map((d) => [d.cell, d.difference.where])).toEqual([
      [2, "not run"],
      [3, "not run"],
    ]);
    (reference.cells[2] as any).source = "";
    (run.cells[2] as any).source = "";
    expect((await compareNotebooks(run, reference)).map((d) => d.cell)).toEqual([2]);
  });
});

describe("the report", () => {
  const many = (scale: number, cells = 30, numbers = 200) =>
    notebook(
      Array.from({ length: cells }, (_, i) => ({
        source: `cell${i}`,
        outputs: [stdout(Array.from({ length: numbers }, (_, k) => (k * scale + 0.5).toFixed(1)).join(" ") + "\n")],
      })),
    );

  it("shows the first differences of each cell, counts the rest, and ends with a summary line", async () => {
    const differences = await compareNotebooks(many(1, 3, 50), many(2, 3, 50));
    const report = formatReport(differences, "run.ipynb", "ref.ipynb", { maxPerCell: 4 });
    const lines = report.trimEnd().split("\n");
    expect(lines.filter((line) => line.startsWith("  cell 1 (cell0), output"))).toHaveLength(4);
    expect(report).toMatch(/ {2}cell 1: \.\.\. and 45 more differences in this cell/);
    expect(lines[lines.length - 1]).toBe("147 differences in 3 cells (135 not shown; at most 4 per cell)");
  });

  it("reaches the end of a pipe from the CLI, summary line included", async () => {
    const dir = scratch("mllm-labs-check-");
    writeNotebook(path.join(dir, "run.ipynb"), many(1));
    writeNotebook(path.join(dir, "ref.ipynb"), many(2));
    for (const cap of ["10", "100000"]) {
      // stdout is a pipe here, as in `mllm-labs check ... | tail`.
      const child = spawn(
        process.execPath,
        [path.join(projectRoot(), "bin", "mllm-labs.js"), "check", "run.ipynb", "ref.ipynb", "--max-per-cell", cap],
        { cwd: dir },
      );
      let out = "";
      child.stdout.on("data", (chunk) => (out += chunk));
      const code = await new Promise((resolve) => child.on("exit", resolve));
      expect(code).toBe(1);
      expect(out.trimEnd().split("\n").pop()).toMatch(/^5970 differences in 30 cells/);
    }
  });
});
