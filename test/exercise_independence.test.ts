/**
 * An exercise's check never depends on an earlier exercise being solved
 * (LABS.md, "Exercises"): each lab is run with every exercise solved, checked,
 * and then unsolved again (its stub, as in `notebooks/`, redeclared right after
 * its check cell), so every later part of the lab sees only the TODO versions
 * of the earlier exercises and must still pass.
 */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { runNotebook } from "../src/runner/run";
import { readNotebook, writeNotebook, type Notebook } from "../src/runner/notebook";
import { stubSolutions } from "../src/exercises/build";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();
const solutions = fs
  .readdirSync(path.join(root, "solutions"))
  .filter((f) => f.endsWith(".ipynb"))
  .sort();

function sourceOf(cell: Notebook["cells"][number]): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** The solution with each exercise's stub inserted after its check cell; returns it and the number of exercises. */
function unsolveAfterChecks(solution: Notebook, name: string): { notebook: Notebook; exercises: number } {
  const cells: Notebook["cells"] = [];
  let stub: Notebook["cells"][number] | undefined;
  let exercises = 0;
  for (const cell of solution.cells) {
    cells.push(cell);
    if (cell.cell_type !== "code") continue;
    if (sourceOf(cell).includes("BEGIN SOLUTION")) {
      const { source } = stubSolutions(sourceOf(cell), `${name} cell ${cell.id}`);
      const topLevelTodo = /^throw new Error\("TODO/m.test(source); // a stub outside any function raises when it runs
      stub = {
        ...cell,
        id: `${cell.id}-unsolved`,
        source,
        outputs: [],
        execution_count: null,
        metadata: { tags: topLevelTodo ? ["raises-exception"] : [] },
      };
    } else if (stub) {
      cells.push(stub); // right after the exercise's check cell
      stub = undefined;
      exercises++;
    }
  }
  return { notebook: { ...solution, cells }, exercises };
}

describe("exercise independence", () => {
  for (const name of solutions) {
    it(`${name}: every part after an exercise runs and passes with that exercise unsolved`, async () => {
      const { notebook, exercises } = unsolveAfterChecks(readNotebook(path.join(root, "solutions", name)), name);
      expect(exercises, "a lab has at least four exercises").toBeGreaterThanOrEqual(4);
      // Inside the project, so that the notebook imports `mllm-labs` as the labs do (dist/ is ignored by git).
      const dir = fs.mkdtempSync(path.join(root, "dist", "exercise-independence-"));
      try {
        const input = path.join(dir, name);
        writeNotebook(input, notebook);
        const result = await runNotebook(input, {
          outDir: scratch("mllm-labs-independence-"),
          timeout: 300,
        });
        expect(result.failure ?? "", result.failure).toBe("");
        expect(result.cellsRun).toBe(result.codeCells);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 400_000);
  }
});
