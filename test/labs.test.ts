/**
 * Every lab still runs and still produces its solution's results: each
 * solution notebook is executed headless and checked against its stored
 * outputs; the exercise notebooks are up to date and stop at their first TODO.
 */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { runNotebook } from "../src/runner/run";
import { readNotebook } from "../src/runner/notebook";
import { checkNotebooks, formatReport } from "../src/checker/check";
import { buildExercises } from "../src/exercises/build";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();
const solutions = fs
  .readdirSync(path.join(root, "solutions"))
  .filter((f) => f.endsWith(".ipynb"))
  .sort();

describe("labs", () => {
  it("has at least the foundations lab", () => {
    expect(solutions).toContain("00-foundations.ipynb");
  });

  it("keeps notebooks/ built from solutions/", () => {
    const { built, orphans } = buildExercises(path.join(root, "solutions"), path.join(root, "notebooks"), { check: true });
    expect(
      built.filter((b) => b.changed).map((b) => b.exercise),
      "run `npm run build-exercises`",
    ).toEqual([]);
    expect(orphans).toEqual([]);
    expect(built.every((b) => b.regions > 0)).toBe(true);
  });

  for (const name of solutions) {
    it(`${name}: runs headless and matches its stored outputs`, async () => {
      const outDir = scratch("mllm-labs-lab-");
      const result = await runNotebook(path.join(root, "solutions", name), { outDir, timeout: 300 });
      expect(result.failure ?? "", result.failure).toBe("");
      expect(result.cellsRun).toBe(result.codeCells);
      const differences = await checkNotebooks(result.output, path.join(root, "solutions", name));
      expect(differences, formatReport(differences, result.output, name)).toEqual([]);
      // A re-executed lab keeps its cells' metadata: the check-* tags and nbgrader's grading metadata.
      const metadata = (file: string) => readNotebook(file).cells.map((cell) => ({ id: cell.id, metadata: cell.metadata }));
      expect(metadata(result.output)).toEqual(metadata(path.join(root, "solutions", name)));
    }, 400_000);

    it(`${name}: the exercise version stops at its first TODO`, async () => {
      const outDir = scratch("mllm-labs-exercise-");
      const result = await runNotebook(path.join(root, "notebooks", name), { outDir, timeout: 300 });
      expect(result.ok).toBe(false);
      expect(result.failure).toMatch(/failed: Error: TODO: /);
    }, 400_000);
  }
});
