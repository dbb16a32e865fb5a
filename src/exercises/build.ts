/**
 * `mllm-labs build-exercises`: writes `notebooks/` from `solutions/`, the
 * single source of every lab (nbgrader's "release" step, for TypeScript).
 *
 * In code cells, each region between `// BEGIN SOLUTION` and `// END SOLUTION`
 * lines becomes `throw new Error("TODO: <what>")` at the region's indent, where
 * <what> is the text after `BEGIN SOLUTION` (or "your code here"). The lines
 * around the region (a function's typed signature, the check after it) stay.
 * Regions between `// BEGIN HIDDEN TESTS` and `// END HIDDEN TESTS` (in a
 * check cell) are removed: they exist only in `solutions/` and the grader puts
 * them back. Outputs and execution counts are cleared; cells tagged
 * `solution-only` are left out.
 *
 * Grading metadata (nbgrader's, schema 3), written into both `solutions/` and
 * `notebooks/`: a code cell with a solution region is a solution cell
 * (`solution: true`); the code cell right after it is its check, a locked grade
 * cell worth the points of its `points=N` tag (required); every other code
 * cell is locked (read-only: the grader restores it from the solution).
 * `grade_id` is the cell's id; `checksum` is nbgrader's `compute_checksum` of
 * the cell as written in that copy.
 *
 * Reference: nbgrader's ClearSolutions, ClearHiddenTests and ComputeChecksums
 * preprocessors and `utils.compute_checksum`
 * (https://github.com/jupyter/nbgrader/blob/main/nbgrader/preprocessors/clearsolutions.py,
 * https://github.com/jupyter/nbgrader/blob/main/nbgrader/utils.py).
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import {
  cellTags,
  joinSource,
  readNotebook,
  serializeNotebook,
  splitLines,
  writeFileAtomic,
  type Cell,
  type Notebook,
} from "../runner/notebook";

const BEGIN = /^(\s*)\/\/\s*BEGIN SOLUTION\b\s*(.*)$/;
const END = /^\s*\/\/\s*END SOLUTION\b/;
const BEGIN_HIDDEN = /^\s*\/\/\s*BEGIN HIDDEN TESTS\b/;
const END_HIDDEN = /^\s*\/\/\s*END HIDDEN TESTS\b/;
const POINTS_TAG = /^points=(.*)$/;

/** Raised for solution markers that do not pair up, and exercises without points. */
export class ExerciseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExerciseError";
  }
}

/** nbgrader's cell metadata (schema version 3). */
export interface NbgraderMetadata {
  grade_id: string;
  /** A solution cell: the student writes here. */
  solution: boolean;
  /** A grade cell: full points when it runs without error. */
  grade: boolean;
  /** Read-only: restored from the solution at grading. */
  locked: boolean;
  /** Points of a grade cell (0 otherwise). */
  points: number;
  task: false;
  schema_version: 3;
  cell_type: Cell["cell_type"];
  checksum: string;
}

/** The nbgrader metadata of a cell, if any. */
export function nbgraderMetadata(cell: Cell): NbgraderMetadata | undefined {
  const value = cell.metadata?.nbgrader;
  return value && typeof value === "object" ? (value as NbgraderMetadata) : undefined;
}

/** Python's `str(float(x))` for the numbers points take (5 → "5.0", 2.5 → "2.5"). */
function pythonFloat(x: number): string {
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

/**
 * nbgrader's `utils.compute_checksum`: md5 of the source, the cell type,
 * `str(is_grade)`, `str(is_solution)`, `str(is_locked)`, the grade id, and for
 * a grade cell `str(float(points))`.
 */
export function computeChecksum(
  source: string,
  cellType: string,
  grader: Omit<NbgraderMetadata, "checksum" | "cell_type" | "task" | "schema_version">,
): string {
  const md5 = createHash("md5");
  const python = (b: boolean) => (b ? "True" : "False");
  md5.update(source, "utf8");
  md5.update(cellType, "utf8");
  md5.update(python(grader.grade));
  md5.update(python(grader.solution));
  md5.update(python(grader.locked));
  md5.update(grader.grade_id, "utf8");
  if (grader.grade) md5.update(pythonFloat(grader.points));
  return md5.digest("hex");
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
    if (end < 0 || BEGIN.test(lines[end]))
      throw new ExerciseError(`${where}, line ${i + 1}: BEGIN SOLUTION without an END SOLUTION`);
    const [, indent, what] = begin;
    const task = what.replace(/^[(:\-–]\s*|\s*\)$/g, "").trim() || "your code here";
    out.push(`${indent}throw new Error(${JSON.stringify(`TODO: ${task}`)});`);
    regions++;
    i = end;
  }
  return { source: out.join("\n"), regions };
}

/** Removes each hidden-tests region (its marker lines included) from one cell's source. */
export function stripHiddenTests(source: string, where = "cell"): { source: string; regions: number } {
  const lines = source.split("\n");
  const out: string[] = [];
  let regions = 0;
  for (let i = 0; i < lines.length; i++) {
    if (!BEGIN_HIDDEN.test(lines[i])) {
      if (END_HIDDEN.test(lines[i]))
        throw new ExerciseError(`${where}, line ${i + 1}: END HIDDEN TESTS without a BEGIN HIDDEN TESTS`);
      out.push(lines[i]);
      continue;
    }
    const end = lines.findIndex((line, k) => k > i && (END_HIDDEN.test(line) || BEGIN_HIDDEN.test(line)));
    if (end < 0 || BEGIN_HIDDEN.test(lines[end]))
      throw new ExerciseError(`${where}, line ${i + 1}: BEGIN HIDDEN TESTS without an END HIDDEN TESTS`);
    regions++;
    i = end;
  }
  return { source: out.join("\n"), regions };
}

/** The points of a check cell, from its `points=N` tag. */
function pointsOf(cell: Cell, where: string): number | undefined {
  const tags = cellTags(cell).filter((t) => POINTS_TAG.test(t));
  if (tags.length === 0) return undefined;
  if (tags.length > 1) throw new ExerciseError(`${where}: several points tags (${tags.join(", ")}); expected one`);
  const value = Number(POINTS_TAG.exec(tags[0])![1]);
  if (!Number.isFinite(value) || value <= 0)
    throw new ExerciseError(`${where}: tag "${tags[0]}" needs a positive number of points`);
  return value;
}

/** One graded exercise of a solution notebook. */
export interface ExerciseSpec {
  /** The solution cell's id (its nbgrader grade_id). */
  solutionId: string;
  /** The check cell's id. */
  gradeId: string;
  points: number;
}

/** A cell's role in grading, decided on the solution notebook. */
type Role = { kind: "solution" } | { kind: "grade"; points: number } | { kind: "locked" } | { kind: "none" };

function roles(solution: Notebook, name: string): Role[] {
  const result: Role[] = solution.cells.map(() => ({ kind: "none" }));
  solution.cells.forEach((cell, index) => {
    if (cell.cell_type !== "code" || cellTags(cell).includes("solution-only")) return;
    const where = `${name} cell ${index + 1}`;
    const source = joinSource(cell.source);
    if (stubSolutions(source, where).regions > 0) {
      result[index] = { kind: "solution" };
      return;
    }
    if (result[index].kind === "none") result[index] = { kind: "locked" };
  });
  // The check of an exercise: the next code cell after its solution cell.
  solution.cells.forEach((cell, index) => {
    if (result[index].kind !== "solution") return;
    const next = solution.cells.findIndex(
      (c, k) => k > index && c.cell_type === "code" && !cellTags(c).includes("solution-only"),
    );
    const where = `${name} cell ${index + 1}`;
    if (next < 0 || result[next].kind === "solution") {
      throw new ExerciseError(`${where}: the exercise has no check cell after it; expected a code cell that checks it`);
    }
    const points = pointsOf(solution.cells[next], `${name} cell ${next + 1}`);
    if (points === undefined) {
      throw new ExerciseError(
        `${name} cell ${next + 1} (the check of the exercise in cell ${index + 1}) has no points: tag it "points=N"`,
      );
    }
    result[next] = { kind: "grade", points };
  });
  solution.cells.forEach((cell, index) => {
    if (result[index].kind === "grade") return;
    const points = pointsOf(cell, `${name} cell ${index + 1}`);
    if (points !== undefined)
      throw new ExerciseError(`${name} cell ${index + 1} has a points tag but is not the check right after an exercise`);
  });
  return result;
}

function withGrading(cell: Cell, role: Role, source: string, index: number, name: string): Cell {
  const { nbgrader: _old, ...metadata } = cell.metadata ?? {};
  if (role.kind === "none") return { ...cell, metadata };
  if (!cell.id) throw new ExerciseError(`${name} cell ${index + 1} has no id; nbformat 4.5 cell ids are the grade ids`);
  const grader = {
    grade_id: cell.id,
    solution: role.kind === "solution",
    grade: role.kind === "grade",
    locked: role.kind !== "solution",
    points: role.kind === "grade" ? role.points : 0,
  };
  const nbgrader: NbgraderMetadata = {
    ...grader,
    task: false,
    schema_version: 3,
    cell_type: cell.cell_type,
    checksum: computeChecksum(source, cell.cell_type, grader),
  };
  return { ...cell, metadata: { ...metadata, nbgrader } };
}

/** The graded exercises of a notebook that carries nbgrader metadata, in order. */
export function exercisesOf(notebook: Notebook): ExerciseSpec[] {
  const specs: ExerciseSpec[] = [];
  notebook.cells.forEach((cell, index) => {
    const meta = nbgraderMetadata(cell);
    if (!meta?.solution) return;
    const check = notebook.cells.slice(index + 1).find((c) => c.cell_type === "code");
    const checkMeta = check && nbgraderMetadata(check);
    if (checkMeta?.grade) specs.push({ solutionId: meta.grade_id, gradeId: checkMeta.grade_id, points: checkMeta.points });
  });
  return specs;
}

/** The solution notebook with grading metadata (what `build-exercises` writes back into `solutions/`). */
export function annotateSolution(solution: Notebook, name = "notebook"): Notebook {
  const cellRoles = roles(solution, name);
  const cells = solution.cells.map((cell, index) =>
    withGrading(structuredClone(cell), cellRoles[index], joinSource(cell.source), index, name),
  );
  return { ...structuredClone(solution), cells };
}

/** The exercise notebook made from a solution notebook. */
export function exerciseFromSolution(solution: Notebook, name = "notebook"): { notebook: Notebook; regions: number } {
  const cellRoles = roles(solution, name);
  let regions = 0;
  const cells: Cell[] = [];
  for (const [index, cell] of solution.cells.entries()) {
    if (cellTags(cell).includes("solution-only")) continue;
    if (cell.cell_type !== "code") {
      cells.push(structuredClone(cell));
      continue;
    }
    const where = `${name} cell ${index + 1}`;
    const stubbed = stubSolutions(joinSource(cell.source), where);
    const visible = stripHiddenTests(stubbed.source, where);
    if (visible.regions > 0 && cellRoles[index].kind !== "grade") {
      throw new ExerciseError(`${where}: hidden tests belong in the check cell right after an exercise`);
    }
    regions += stubbed.regions;
    const stub = { ...structuredClone(cell), source: splitLines(visible.source), outputs: [], execution_count: null };
    cells.push(withGrading(stub, cellRoles[index], visible.source, index, name));
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
  /** Whether the solution's grading metadata was (or, with `check`, would be) rewritten. */
  solutionChanged: boolean;
  /** Kept as it was: its answer cells hold someone's work (see `force`). */
  refused?: string;
}

/**
 * Answer cells of an existing exercise notebook that differ from the stubs
 * about to be written (someone's work), by cell id; empty when none.
 */
export function editedAnswers(existing: Notebook, built: Notebook): string[] {
  const stubs = new Map(built.cells.map((c) => [c.id, joinSource(c.source)]));
  const answerIds = new Set(built.cells.filter((c) => nbgraderMetadata(c)?.solution).map((c) => c.id));
  const edited: string[] = [];
  for (const cell of existing.cells) {
    const meta = nbgraderMetadata(cell);
    const isAnswer = meta?.solution || answerIds.has(cell.id);
    if (isAnswer && cell.id && stubs.has(cell.id) && joinSource(cell.source) !== stubs.get(cell.id)) edited.push(cell.id);
    if (
      isAnswer &&
      meta?.solution &&
      meta.checksum &&
      meta.checksum !== computeChecksum(joinSource(cell.source), cell.cell_type, meta) &&
      !edited.includes(cell.id ?? "")
    ) {
      edited.push(cell.id ?? "(no id)");
    }
  }
  return edited;
}

/** Options for {@link buildExercises}. */
export interface BuildExercisesArgs {
  /** Write nothing; report which files would change. Default: false. */
  check?: boolean;
  /** Overwrite exercise notebooks whose answer cells were edited. Default: false (they are kept and reported). */
  force?: boolean;
}

/**
 * Builds every `*.ipynb` of `solutionsDir` into `exercisesDir`, and writes the
 * grading metadata into the solutions. With `check`, writes nothing and
 * reports which would change (and which exercise has no solution any more).
 * An exercise notebook whose answer cells differ from the stubs (a student's
 * or an instructor's edits) is not overwritten unless `force`.
 */
export function buildExercises(
  solutionsDir: string,
  exercisesDir: string,
  options: BuildExercisesArgs = {},
): { built: BuiltExercise[]; orphans: string[] } {
  if (!fs.existsSync(solutionsDir)) throw new ExerciseError(`solutions folder "${solutionsDir}" does not exist`);
  const names = fs
    .readdirSync(solutionsDir)
    .filter((f) => f.endsWith(".ipynb"))
    .sort();
  const built: BuiltExercise[] = [];
  for (const name of names) {
    const solution = path.join(solutionsDir, name);
    const exercise = path.join(exercisesDir, name);
    const solutionNotebook = readNotebook(solution);
    const annotated = serializeNotebook(annotateSolution(solutionNotebook, name));
    const solutionChanged = fs.readFileSync(solution, "utf8") !== annotated;
    const { notebook, regions } = exerciseFromSolution(solutionNotebook, name);
    const text = serializeNotebook(notebook);
    const exists = fs.existsSync(exercise);
    const changed = !exists || fs.readFileSync(exercise, "utf8") !== text;
    let refused: string | undefined;
    if (changed && exists && !options.force) {
      let existing: Notebook | undefined;
      try {
        existing = readNotebook(exercise);
      } catch (error) {
        refused = `it is not a readable notebook (${(error as Error).message.split("\n")[0]})`;
      }
      const edited = existing ? editedAnswers(existing, notebook) : [];
      if (edited.length > 0)
        refused = `answer cell${edited.length === 1 ? "" : "s"} ${edited.join(", ")} differ${edited.length === 1 ? "s" : ""} from the stubs (someone's work)`;
    }
    if (!options.check) {
      if (solutionChanged) writeFileAtomic(solution, annotated);
      if (changed && !refused) writeFileAtomic(exercise, text);
    }
    built.push({ solution, exercise, regions, changed, solutionChanged, ...(refused ? { refused } : {}) });
  }
  const orphans = fs.existsSync(exercisesDir)
    ? fs
        .readdirSync(exercisesDir)
        .filter((f) => f.endsWith(".ipynb") && !names.includes(f))
        .map((f) => path.join(exercisesDir, f))
    : [];
  return { built, orphans };
}
