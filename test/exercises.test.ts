import { describe, expect, it } from "vitest";
import { exerciseFromSolution, stubSolutions } from "../src/exercises/build";
import type { Notebook } from "../src/runner/notebook";

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
    const { source, regions } = stubSolutions('// BEGIN SOLUTION\na = 1;\n// END SOLUTION\nx;\n  // BEGIN SOLUTION say "hi"\n  b();\n  // END SOLUTION');
    expect(regions).toBe(2);
    expect(source).toBe('throw new Error("TODO: your code here");\nx;\n  throw new Error("TODO: say \\"hi\\"");');
  });

  it("rejects unpaired markers, naming the place", () => {
    expect(() => stubSolutions("// BEGIN SOLUTION\nx", "lab.ipynb cell 3")).toThrow(/lab.ipynb cell 3, line 1: BEGIN SOLUTION without an END SOLUTION/);
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
        { cell_type: "code", id: "a", metadata: {}, execution_count: 4, outputs: [{ output_type: "stream", name: "stdout", text: "x" }], source: "// BEGIN SOLUTION\nf()\n// END SOLUTION\n" },
        { cell_type: "code", id: "b", metadata: { tags: ["solution-only"] }, execution_count: 5, outputs: [], source: "secret()" },
      ],
    };
    const { notebook, regions } = exerciseFromSolution(solution);
    expect(regions).toBe(1);
    expect(notebook.cells.map((c) => c.id)).toEqual(["m", "a"]);
    expect(notebook.cells[1]).toMatchObject({ execution_count: null, outputs: [], source: ['throw new Error("TODO: your code here");\n'] });
    expect((solution.cells[1] as any).outputs).toHaveLength(1); // the solution is not modified
  });
});
