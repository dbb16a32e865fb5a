import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import {
  annotateSolution,
  buildExercises,
  computeChecksum,
  exerciseFromSolution,
  stripHiddenTests,
  stubSolutions,
} from "../src/exercises/build";
import type { Notebook } from "../src/runner/notebook";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

describe("exercise generation", () => {
  it("replaces a solution region by a TODO at its indent, keeping the typed signature and what follows", () => {
    const source = [
      "function softmax(x: tf.Tensor): tf.Tensor {",
      "  return tf.tidy(() => {",
      "    // BEGIN SOLUTION subtract the max, exponentiate, normalise",
      "    const e = x.sub(x.max(-1, true)).exp();",
      "    return e.div(e.sum(-1, true));",
      "    // END SOLUTION",
      "  });",
      "}",
    ].join("\n");
    const { source: stub, regions } = stubSolutions(source);
    expect(regions).toBe(1);
    expect(stub).toBe(
      [
        "function softmax(x: tf.Tensor): tf.Tensor {",
        "  return tf.tidy(() => {",
        '    throw new Error("TODO: subtract the max, exponentiate, normalise");',
        "  });",
        "}",
      ].join("\n"),
    );
  });

  it("uses a default task, handles several regions, escapes quotes", () => {
    const { source, regions } = stubSolutions(
      '// BEGIN SOLUTION\na = 1;\n// END SOLUTION\nx;\n  // BEGIN SOLUTION say "hi"\n  b();\n  // END SOLUTION',
    );
    expect(regions).toBe(2);
    expect(source).toBe('throw new Error("TODO: your code here");\nx;\n  throw new Error("TODO: say \\"hi\\"");');
  });

  it("rejects unpaired markers, naming the place", () => {
    expect(() => stubSolutions("// BEGIN SOLUTION\nx", "lab.ipynb cell 3")).toThrow(
      /lab.ipynb cell 3, line 1: BEGIN SOLUTION without an END SOLUTION/,
    );
    expect(() => stubSolutions("x\n// END SOLUTION")).toThrow(/line 2: END SOLUTION without a BEGIN SOLUTION/);
    expect(() => stubSolutions("// BEGIN SOLUTION\n// BEGIN SOLUTION\n// END SOLUTION")).toThrow(/without an END/);
  });

  it("clears outputs and counts, drops solution-only cells, keeps markdown", () => {
    const solution: Notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "mllm-labs" } },
      cells: [
        { cell_type: "markdown", id: "m", metadata: {}, source: "# Title" },
        {
          cell_type: "code",
          id: "a",
          metadata: {},
          execution_count: 4,
          outputs: [{ output_type: "stream", name: "stdout", text: "x" }],
          source: "// BEGIN SOLUTION\nf()\n// END SOLUTION\n",
        },
        {
          cell_type: "code",
          id: "b",
          metadata: { tags: ["solution-only"] },
          execution_count: 5,
          outputs: [],
          source: "secret()",
        },
        { cell_type: "code", id: "c", metadata: { tags: ["points=1"] }, execution_count: 6, outputs: [], source: "check()" },
      ],
    };
    const { notebook, regions } = exerciseFromSolution(solution);
    expect(regions).toBe(1);
    expect(notebook.cells.map((c) => c.id)).toEqual(["m", "a", "c"]);
    expect(notebook.cells[1]).toMatchObject({
      execution_count: null,
      outputs: [],
      source: ['throw new Error("TODO: your code here");\n'],
    });
    expect((solution.cells[1] as any).outputs).toHaveLength(1); // the solution is not modified
  });
});

/** A solution notebook: setup, one exercise, its check (with hidden tests), a last cell. */
function solutionNotebook(points = "points=2"): Notebook {
  const code = (id: string, source: string, tags: string[] = []) => ({
    cell_type: "code" as const,
    id,
    metadata: tags.length ? { tags } : {},
    execution_count: null,
    outputs: [],
    source,
  });
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      { cell_type: "markdown", id: "intro", metadata: {}, source: "# Lab" },
      code("setup", 'import * as tf from "@tensorflow/tfjs";'),
      code("answer", "function f(x: number): number {\n  // BEGIN SOLUTION add one\n  return x + 1;\n  // END SOLUTION\n}"),
      code(
        "check",
        "check(f(1) === 2);\n// BEGIN HIDDEN TESTS\ncheck(f(-1) === 0);\n// END HIDDEN TESTS",
        points ? [points] : [],
      ),
      code("last", "console.log(1);"),
    ],
  };
}

describe("grading metadata (nbgrader)", () => {
  it("computes nbgrader's checksum (values from nbgrader's utils.compute_checksum algorithm in Python)", () => {
    expect(
      computeChecksum("check(double(3) === 6);", "code", {
        grade_id: "check1",
        solution: false,
        grade: true,
        locked: true,
        points: 2,
      }),
    ).toBe("e1093eb9bea347529cd2563f6d2716ff");
    expect(
      computeChecksum('function f() {\n  throw new Error("TODO: x");\n}', "code", {
        grade_id: "answer1",
        solution: true,
        grade: false,
        locked: false,
        points: 0,
      }),
    ).toBe("e6426cf411678875bece7f0c3bded42c");
    expect(computeChecksum("x", "code", { grade_id: "g", solution: false, grade: true, locked: true, points: 2.5 })).toBe(
      "5920c16bef788c8bba89b756c293d13c",
    );
  });

  it("marks the answer as a solution cell, its check as a locked grade cell with its points, other code cells locked", () => {
    const annotated = annotateSolution(solutionNotebook());
    const meta = (id: string) => annotated.cells.find((c) => c.id === id)!.metadata.nbgrader as any;
    expect(meta("intro")).toBeUndefined();
    expect(meta("answer")).toMatchObject({
      grade_id: "answer",
      solution: true,
      grade: false,
      locked: false,
      points: 0,
      schema_version: 3,
    });
    expect(meta("check")).toMatchObject({ grade_id: "check", solution: false, grade: true, locked: true, points: 2 });
    expect(meta("setup")).toMatchObject({ solution: false, grade: false, locked: true });
    expect(meta("last")).toMatchObject({ locked: true, grade: false });
  });

  it("strips hidden tests from the students' copy only, with checksums of each copy's source", () => {
    const { notebook } = exerciseFromSolution(solutionNotebook());
    const check = notebook.cells.find((c) => c.id === "check")!;
    expect((check.source as string[]).join("")).toBe("check(f(1) === 2);");
    const meta = check.metadata.nbgrader as any;
    expect(meta.checksum).toBe(computeChecksum("check(f(1) === 2);", "code", meta));
    const annotated = annotateSolution(solutionNotebook());
    const solutionCheck = annotated.cells.find((c) => c.id === "check")!;
    expect(solutionCheck.source).toContain("check(f(-1) === 0);");
    expect((solutionCheck.metadata.nbgrader as any).checksum).not.toBe(meta.checksum);
    const answer = notebook.cells.find((c) => c.id === "answer")!;
    expect((answer.metadata.nbgrader as any).checksum).toBe(
      computeChecksum((answer.source as string[]).join(""), "code", answer.metadata.nbgrader as any),
    );
    expect(stripHiddenTests("a\n// BEGIN HIDDEN TESTS\nb\n// END HIDDEN TESTS\nc").source).toBe("a\nc");
    expect(() => stripHiddenTests("// BEGIN HIDDEN TESTS\nb", "lab cell 4")).toThrow(
      /lab cell 4, line 1: BEGIN HIDDEN TESTS without an END HIDDEN TESTS/,
    );
  });

  it("requires points on every exercise's check, naming the cell", () => {
    expect(() => exerciseFromSolution(solutionNotebook(""), "lab.ipynb")).toThrow(
      /lab.ipynb cell 4 \(the check of the exercise in cell 3\) has no points: tag it "points=N"/,
    );
    expect(() => exerciseFromSolution(solutionNotebook("points=-1"), "lab.ipynb")).toThrow(
      /tag "points=-1" needs a positive number of points/,
    );
  });

  it("writes metadata into solutions/ and notebooks/, and keeps a notebook with edited answers unless forced", () => {
    const dir = scratch("mllm-exercises-");
    try {
      const solutions = path.join(dir, "solutions");
      const notebooks = path.join(dir, "notebooks");
      fs.mkdirSync(solutions);
      fs.writeFileSync(path.join(solutions, "01-lab.ipynb"), JSON.stringify(solutionNotebook()));
      const first = buildExercises(solutions, notebooks);
      expect(first.built[0]).toMatchObject({ changed: true, solutionChanged: true });
      expect(JSON.parse(fs.readFileSync(path.join(solutions, "01-lab.ipynb"), "utf8")).cells[2].metadata.nbgrader.solution).toBe(
        true,
      );
      expect(buildExercises(solutions, notebooks, { check: true }).built[0]).toMatchObject({
        changed: false,
        solutionChanged: false,
      });

      // A student's answer in the exercise notebook, then the solution changes.
      const exercise = path.join(notebooks, "01-lab.ipynb");
      const student = JSON.parse(fs.readFileSync(exercise, "utf8"));
      student.cells[2].source = ["function f(x: number): number {\n", "  return x + 1; // mine\n", "}"];
      fs.writeFileSync(exercise, JSON.stringify(student));
      const studentText = fs.readFileSync(exercise, "utf8");
      const changedSolution = solutionNotebook();
      (changedSolution.cells[4] as any).source = "console.log(2);";
      fs.writeFileSync(path.join(solutions, "01-lab.ipynb"), JSON.stringify(changedSolution));
      const kept = buildExercises(solutions, notebooks);
      expect(kept.built[0].refused).toMatch(/answer cell answer differs from the stubs/);
      expect(fs.readFileSync(exercise, "utf8")).toBe(studentText);
      const forced = buildExercises(solutions, notebooks, { force: true });
      expect(forced.built[0].refused).toBeUndefined();
      expect(fs.readFileSync(exercise, "utf8")).toContain("console.log(2);");
      expect(fs.readFileSync(exercise, "utf8")).not.toContain("// mine");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
