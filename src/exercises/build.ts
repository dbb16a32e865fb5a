/**
 * `mllm-labs build-exercises`: writes `notebooks/` from `solutions/`, the
 * single source of every lab (nbgrader's "release" step, for TypeScript).
 *
 * In code cells, each region between `// BEGIN SOLUTION` and `// END SOLUTION`
 * lines becomes `throw new Error("TODO: <what>")` at the region's indent, where
 * <what> is the text after `BEGIN SOLUTION` (or "your code here"). The lines
 * around the region (a function's typed signature, the check after it) stay.
 * Outputs and execution counts are cleared; cells tagged `solution-only` are
 * left out.
 *
 * Reference: nbgrader's ClearSolutions preprocessor
 * (https://github.com/jupyter/nbgrader/blob/main/nbgrader/preprocessors/clearsolutions.py).
 */
import * as fs from "fs";
import * as path from "path";
import { cellTags, joinSource, readNotebook, serializeNotebook, splitLines, writeFileAtomic, type Notebook } from "../runner/notebook";

const BEGIN = /^(\s*)\/\/\s*BEGIN SOLUTION\b\s*(.*)$/;
const END = /^\s*\/\/\s*END SOLUTION\b/;

/** Raised for solution markers that do not pair up. */
export class ExerciseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExerciseError";
  }
}

/** Replaces each solution region of one cell's source by a TODO stub. */
export function stubSolutions(source: string, where = "cell"): { source: string; regions: number } {
  const lines = source.split("\n");
  const out: string[] = [];
  let regions = 0;
  for (let i = 0; i < lines.length; i++) {
    const begin = BEGIN.exec(lines[i]);
    if (!begin) {
      if (END.test(lines[i])) throw new ExerciseError(`${where}, line ${i + 1}: END SOLUTION without a BEGIN SOLUTION`);
      out.push(lines[i]);
      continue;
    }
    const end = lines.findIndex((line, k) => k > i && (END.test(line) || BEGIN.test(line)));
    if (end < 0 || BEGIN.test(lines[end])) throw new ExerciseError(`${where}, line ${i + 1}: BEGIN SOLUTION without an END SOLUTION`);
    const [, indent, what] = begin;
    const task = what.replace(/^[(:\-–]\s*|\s*\)$/g, "").trim() || "your code here";
    out.push(`${indent}throw new Error(${JSON.stringify(`TODO: ${task}`)});`);
    regions++;
    i = end;
  }
  return { source: out.join("\n"), regions };
}

/** The exercise notebook made from a solution notebook. */
export function exerciseFromSolution(solution: Notebook, name = "notebook"): { notebook: Notebook; regions: number } {
  let regions = 0;
  const cells = [];
  for (const [index, cell] of solution.cells.entries()) {
    if (cellTags(cell).includes("solution-only")) continue;
    if (cell.cell_type !== "code") {
      cells.push(structuredClone(cell));
      continue;
    }
    const stubbed = stubSolutions(joinSource(cell.source), `${name} cell ${index + 1}`);
    regions += stubbed.regions;
    cells.push({ ...structuredClone(cell), source: splitLines(stubbed.source), outputs: [], execution_count: null });
  }
  return { notebook: { ...structuredClone(solution), cells }, regions };
}

/** One notebook's fate in {@link buildExercises}. */
export interface BuiltExercise {
  solution: string;
  exercise: string;
  regions: number;
  /** Whether the file on disk differs from what was built (before writing). */
  changed: boolean;
}

/**
 * Builds every `*.ipynb` of `solutionsDir` into `exercisesDir`. With `check`,
 * writes nothing and reports which would change (and which exercise has no
 * solution any more).
 */
export function buildExercises(solutionsDir: string, exercisesDir: string, options: { check?: boolean } = {}): { built: BuiltExercise[]; orphans: string[] } {
  if (!fs.existsSync(solutionsDir)) throw new ExerciseError(`solutions folder "${solutionsDir}" does not exist`);
  const names = fs.readdirSync(solutionsDir).filter((f) => f.endsWith(".ipynb")).sort();
  const built: BuiltExercise[] = [];
  for (const name of names) {
    const solution = path.join(solutionsDir, name);
    const exercise = path.join(exercisesDir, name);
    const { notebook, regions } = exerciseFromSolution(readNotebook(solution), name);
    const text = serializeNotebook(notebook);
    const changed = !fs.existsSync(exercise) || fs.readFileSync(exercise, "utf8") !== text;
    if (changed && !options.check) writeFileAtomic(exercise, text);
    built.push({ solution, exercise, regions, changed });
  }
  const orphans = fs.existsSync(exercisesDir)
    ? fs.readdirSync(exercisesDir).filter((f) => f.endsWith(".ipynb") && !names.includes(f)).map((f) => path.join(exercisesDir, f))
    : [];
  return { built, orphans };
}
