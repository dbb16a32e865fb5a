/**
 * Restoring a submission against its solution, as nbgrader's
 * `OverwriteCells` and `CheckCellMetadata` do: the notebook that is executed
 * has the solution's cells in the solution's order; only the answers (solution
 * cells) come from the student, every locked cell (checks, setup, helpers)
 * from the solution, hidden tests included. What the student changed in
 * locked cells, and cells deleted, moved or added, are reported.
 *
 * Cells are matched by their id (the nbgrader `grade_id`). A code cell the
 * student added is kept (executed where the student put it) unless it sits
 * between an exercise and its check, where it is dropped and reported.
 *
 * Reference: nbgrader's `preprocessors/overwritecells.py`
 * (https://github.com/jupyter/nbgrader/blob/main/nbgrader/preprocessors/overwritecells.py).
 */
import { annotateSolution, exerciseFromSolution, nbgraderMetadata } from "../exercises/build";
import { cellTags, joinSource, type Cell, type CodeCell, type Notebook } from "../runner/notebook";

/** One code cell of the notebook to execute. */
export interface PlannedCell {
  /** The cell id (the solution's, or the student's for an added cell). */
  id: string;
  source: string;
  role: "locked" | "solution" | "grade" | "added";
  /** Index of the exercise (0-based) for solution and grade cells. */
  exercise?: number;
  /** A locked helper cell re-run before every grade cell (tag `grade-helpers`). */
  helper?: boolean;
}

/** One graded exercise: its answer cell, its check and its points. */
export interface PlannedExercise {
  /** "exercise 1", … in notebook order. */
  name: string;
  solutionId: string;
  gradeId: string;
  points: number;
  /** Code run in place of the student's answer when the check fails, so that later exercises that use it can pass (`metadata.mllm_labs.reference` of the solution cell). */
  reference?: string;
}

/** What {@link restoreSubmission} gives. */
export interface Restored {
  /** Every cell in order, markdown included (for the feedback), code cells planned. */
  cells: (PlannedCell | { id: string; role: "markdown"; source: string })[];
  exercises: PlannedExercise[];
  /** What the student changed that the grader undid, one line each, in notebook order. */
  tampering: string[];
  /** Other notes (cells added and kept). */
  notes: string[];
}

function codeCells(notebook: Notebook): CodeCell[] {
  return notebook.cells.filter((c): c is CodeCell => c.cell_type === "code");
}

/** The exercises of a solution notebook (annotated with grading metadata on the fly). */
export function planExercises(solution: Notebook, name: string): { annotated: Notebook; exercises: PlannedExercise[] } {
  const annotated = annotateSolution(solution, name);
  const exercises: PlannedExercise[] = [];
  annotated.cells.forEach((cell, index) => {
    const meta = nbgraderMetadata(cell);
    if (!meta?.grade) return;
    const answer = annotated.cells
      .slice(0, index)
      .reverse()
      .find((c) => c.cell_type === "code")!;
    const reference = (answer.metadata as { mllm_labs?: { reference?: unknown } }).mllm_labs?.reference;
    exercises.push({
      name: `exercise ${exercises.length + 1}`,
      solutionId: answer.id!,
      gradeId: meta.grade_id,
      points: meta.points,
      ...(typeof reference === "string" ? { reference } : {}),
    });
  });
  return { annotated, exercises };
}

/** Restores a student's notebook against the solution notebook. */
export function restoreSubmission(solution: Notebook, student: Notebook, name = "notebook"): Restored {
  const { annotated, exercises } = planExercises(solution, name);
  const released = new Map(exerciseFromSolution(solution, name).notebook.cells.map((c) => [c.id, c]));
  const tampering: string[] = [];
  const notes: string[] = [];
  const exerciseOfSolution = new Map(exercises.map((e, i) => [e.solutionId, i]));
  const exerciseOfGrade = new Map(exercises.map((e, i) => [e.gradeId, i]));
  const solutionIds = new Set(
    annotated.cells.filter((c) => c.cell_type === "code" && !cellTags(c).includes("solution-only")).map((c) => c.id!),
  );

  // The student's code cells by id (the first of duplicates), and their order.
  const studentById = new Map<string, CodeCell>();
  const added: { cell: CodeCell; after: string | undefined; position: number }[] = [];
  let lastKnown: string | undefined;
  codeCells(student).forEach((cell, position) => {
    if (cell.id && solutionIds.has(cell.id) && !studentById.has(cell.id)) {
      studentById.set(cell.id, cell);
      lastKnown = cell.id;
    } else {
      added.push({ cell, after: lastKnown, position });
    }
  });
  const knownOrder = [...studentById.keys()];
  const expectedOrder = [...solutionIds].filter((id) => studentById.has(id));
  if (knownOrder.join("\n") !== expectedOrder.join("\n")) tampering.push("cells were moved: the solution's order is used");

  const cells: Restored["cells"] = [];
  for (const cell of annotated.cells) {
    if (cellTags(cell).includes("solution-only") && cell.cell_type === "code") continue;
    const id = cell.id!;
    if (cell.cell_type !== "code") {
      cells.push({ id, role: "markdown", source: joinSource(cell.source) });
      continue;
    }
    const theirs = studentById.get(id);
    const exercise = exerciseOfSolution.get(id) ?? exerciseOfGrade.get(id);
    if (exerciseOfSolution.has(id)) {
      if (!theirs) tampering.push(`answer cell ${id} (${exercises[exercise!].name}) was deleted: graded as empty`);
      cells.push({ id, role: "solution", exercise, source: theirs ? joinSource(theirs.source) : "" });
    } else {
      const isGrade = exerciseOfGrade.has(id);
      const what = isGrade ? `check cell ${id} (${exercises[exercise!].name})` : `locked cell ${id}`;
      if (!theirs) tampering.push(`${what} was deleted: restored`);
      else if (joinSource(theirs.source) !== joinSource(released.get(id)?.source ?? ""))
        tampering.push(`${what} was edited: restored`);
      else {
        const meta = nbgraderMetadata(theirs);
        const want = nbgraderMetadata(released.get(id)!);
        if (meta && want && (meta.checksum !== want.checksum || meta.points !== want.points || meta.locked !== want.locked)) {
          tampering.push(`${what}: its grading metadata was edited: the solution's is used`);
        }
      }
      cells.push({
        id,
        role: isGrade ? "grade" : "locked",
        exercise,
        source: joinSource(cell.source),
        ...(cellTags(cell).includes("grade-helpers") ? { helper: true } : {}),
      });
    }
    // The student's added cells that followed this one.
    for (const extra of added.filter((a) => a.after === id)) {
      const source = joinSource(extra.cell.source);
      const label = `added code cell ${extra.position + 1}${extra.cell.id ? ` (${extra.cell.id})` : ""}`;
      if (exerciseOfSolution.has(id)) {
        if (source.trim() !== "")
          tampering.push(`${label} sits between ${exercises[exerciseOfSolution.get(id)!].name} and its check: not run`);
        continue;
      }
      if (source.trim() === "") continue;
      notes.push(`${label} after cell ${id}: run`);
      cells.push({ id: extra.cell.id ?? `added-${extra.position + 1}`, role: "added", source });
    }
  }
  // Added cells before every known cell run first... after the setup? They run where the student put them: at the top.
  const leading = added.filter((a) => a.after === undefined && joinSource(a.cell.source).trim() !== "");
  if (leading.length > 0) {
    const firstCode = cells.findIndex((c) => c.role !== "markdown");
    cells.splice(
      Math.max(firstCode, 0),
      0,
      ...leading.map((a) => {
        notes.push(`added code cell ${a.position + 1} at the top: run`);
        return { id: a.cell.id ?? `added-${a.position + 1}`, role: "added" as const, source: joinSource(a.cell.source) };
      }),
    );
  }
  return { cells, exercises, tampering, notes };
}

/** The cell as the student sees it in the exercise notebook: whether it is theirs to edit. */
export function isAnswer(cell: Cell): boolean {
  return nbgraderMetadata(cell)?.solution === true;
}
