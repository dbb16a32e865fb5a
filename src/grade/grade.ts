/**
 * `mllm-labs grade <lab> <submissions...> --out DIR`: grades a class's
 * exercise notebooks against the lab's solution, each submission in its own
 * sandbox (see `sandbox.ts`), several at once, and writes a gradebook and one
 * feedback page per student.
 *
 * Reference: nbgrader's `autograde` (restore locked cells, execute, score grade
 * cells: full points without an error output, 0 with one) and otter-grader's
 * per-submission containers (https://github.com/jupyter/nbgrader,
 * https://github.com/ucbds-infra/otter-grader).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readNotebook, writeFileAtomic, type Notebook } from "../runner/notebook";
import { serializeNotebook } from "../runner/notebook";
import { projectRoot } from "../util/project_root";
import { executeSubmission, killSandboxUserSync, type CellRun } from "./execute";
import {
  hidePaths as withoutPaths,
  feedbackHtml,
  gradebookCsv,
  gradebookJson,
  type ExerciseGrade,
  type StudentGrade,
} from "./report";
import { planExercises, restoreSubmission, type Restored } from "./restore";
import { resolveLimits, sandboxUnavailable, type SandboxLimits } from "./sandbox";

/** Options for {@link gradeSubmissions}. */
export interface GradeArgs {
  /** Folder for gradebook.csv, gradebook.json and feedback/. */
  outDir: string;
  /** Submissions graded at once. Default: the number of CPU cores. */
  jobs?: number;
  /** Seconds each cell may run. Default: 120. */
  cellTimeout?: number;
  /** Seconds one submission may run in all. Default: 900. */
  notebookTimeout?: number;
  /** Sandbox limits (memory, processes, disk, open files); defaults in `sandbox.ts`. */
  limits?: SandboxLimits;
  /** Bytes of output kept per cell in the feedback. Default: 262144. */
  outputLimit?: number;
  /** Kernel restarts per submission after a cell timed out or killed the kernel. Default: 3. */
  maxRestarts?: number;
  /** Lab data folders shown read-only in the sandbox. Default: `<project>/data`. */
  dataDirs?: string[];
  /** First host user id of the sandboxes (job k runs as firstUid + k). Default: 61000. */
  firstUid?: number;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

/** One submission found on the command line. */
export interface Submission {
  student: string;
  /** The notebook file, or the folder that should have held one. */
  file: string;
  /** Why it cannot be graded (no notebook in the folder), if so. */
  problem?: string;
}

/** The solution notebook for `lab`: a path, or a lab number looked up in `<project>/solutions`. */
export function resolveLab(lab: string, root = projectRoot()): string {
  if (/^\d{1,2}$/.test(lab)) {
    const dir = path.join(root, "solutions");
    const prefix = lab.padStart(2, "0") + "-";
    const found = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => f.startsWith(prefix) && f.endsWith(".ipynb"))
          .sort()
      : [];
    if (found.length !== 1)
      throw new Error(
        `lab ${lab}: expected one solutions/${prefix}*.ipynb, found ${found.length === 0 ? "none" : found.join(", ")}`,
      );
    return path.join(dir, found[0]);
  }
  if (!fs.existsSync(lab)) throw new Error(`lab "${lab}" is neither a lab number nor an existing solution notebook`);
  return lab;
}

function stem(file: string): string {
  return path.basename(file).replace(/\.ipynb$/i, "");
}

/**
 * The submissions named by the arguments: a notebook file (the student is its
 * name, or its folder's when the file has the lab's own name), a student's
 * folder (holding the lab's notebook, or one notebook), or a class folder of
 * notebooks and student folders. Sorted by student; repeated names get " (2)".
 */
export function findSubmissions(args: string[], labFile: string): Submission[] {
  const labName = path.basename(labFile);
  const found: Submission[] = [];
  const studentFolder = (dir: string): Submission => {
    const notebooks = fs
      .readdirSync(dir)
      .filter((f) => f.toLowerCase().endsWith(".ipynb") && !f.startsWith("."))
      .sort();
    const chosen = notebooks.includes(labName) ? labName : notebooks.length === 1 ? notebooks[0] : undefined;
    if (!chosen) {
      const problem =
        notebooks.length === 0
          ? "the folder holds no notebook"
          : `the folder holds ${notebooks.length} notebooks and none is named ${labName}`;
      return { student: path.basename(dir), file: dir, problem };
    }
    return { student: path.basename(dir), file: path.join(dir, chosen) };
  };
  for (const arg of args) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(arg);
    } catch {
      found.push({ student: stem(arg), file: arg, problem: "no such file or folder" });
      continue;
    }
    if (stat.isFile()) {
      found.push({
        student: path.basename(arg) === labName ? path.basename(path.dirname(path.resolve(arg))) : stem(arg),
        file: arg,
      });
      continue;
    }
    const entries = fs.readdirSync(arg).sort();
    if (entries.includes(labName) && fs.statSync(path.join(arg, labName)).isFile()) {
      found.push(studentFolder(arg));
      continue;
    }
    for (const entry of entries) {
      if (entry.startsWith(".")) continue;
      const full = path.join(arg, entry);
      const entryStat = fs.statSync(full);
      if (entryStat.isDirectory()) found.push(studentFolder(full));
      else if (entry.toLowerCase().endsWith(".ipynb")) found.push({ student: stem(entry), file: full });
      else found.push({ student: entry, file: full, problem: "not a notebook (.ipynb)" });
    }
  }
  found.sort((a, b) => (a.student < b.student ? -1 : a.student > b.student ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const seen = new Map<string, number>();
  for (const submission of found) {
    const count = (seen.get(submission.student) ?? 0) + 1;
    seen.set(submission.student, count);
    if (count > 1) submission.student = `${submission.student} (${count})`;
  }
  return found;
}

/** Constructs in a student's code that a human should look at; they do not change the score. */
const REVIEW_PATTERNS: [RegExp, string][] = [
  [/\bprototype\b|__proto__|setPrototypeOf|defineProperty/, "changes prototypes or property definitions"],
  [/\bglobalThis\b|\bglobal\./, "touches globalThis"],
  [/\brequire\s*\(|\bimport\s*\(/, "loads modules at run time"],
  [/\bprocess\s*\.\s*(exit|kill|abort|binding|dlopen|stdout|stderr|on)\b/, "uses process controls"],
  [/child_process|worker_threads|\bcluster\b/, "starts processes or threads"],
  [/\bregisterKernel\b|\bunregisterKernel\b|\bregisterBackend\b|\bsetBackend\b/, "changes TensorFlow.js kernels or backends"],
  [/\bfunction\s+(check|maxAbsDiff)\b|\b(check|maxAbsDiff)\s*=[^=]/, "redefines the lab's check helpers"],
  [/\beval\s*\(|\bnew\s+Function\b/, "evaluates code from strings"],
  [
    /from\s+["'](fs|net|http|https|dgram|dns|tls|vm)["']|require\(["'](fs|net|http|https|dgram|dns|tls|vm)["']\)/,
    "imports a system module",
  ],
];

function reviewFlags(restored: Restored): string[] {
  const flags: string[] = [];
  for (const cell of restored.cells) {
    if (cell.role !== "solution" && cell.role !== "added") continue;
    for (const [pattern, what] of REVIEW_PATTERNS) if (pattern.test(cell.source)) flags.push(`cell ${cell.id} ${what}`);
  }
  return flags;
}

function safeFileName(student: string): string {
  return student.replace(/[^\w.@-]+/g, "_").replace(/^\.+/, "_") || "_";
}

interface Graded {
  grade: StudentGrade;
  restored?: Restored;
  runs?: Map<number, CellRun>;
}

/** Grades everything; writes the gradebook and the feedback; returns the rows. */
export async function gradeSubmissions(labArg: string, submissionArgs: string[], args: GradeArgs): Promise<StudentGrade[]> {
  const log = args.log ?? (() => undefined);
  const root = projectRoot();
  const labFile = resolveLab(labArg, root);
  const labName = stem(labFile);
  const solution: Notebook = readNotebook(labFile);
  const { exercises } = planExercises(solution, path.basename(labFile));
  if (exercises.length === 0)
    throw new Error(`${labFile} has no graded exercises (solution regions followed by a check cell tagged points=N)`);
  const unavailable = sandboxUnavailable();
  if (unavailable) throw new Error(`cannot grade: ${unavailable}`);
  const limits = resolveLimits(args.limits);
  const jobs = Math.max(1, Math.floor(args.jobs ?? os.cpus().length));
  const submissions = findSubmissions(submissionArgs, labFile);
  if (submissions.length === 0) throw new Error("no submissions found in the arguments");
  const outDir = path.resolve(args.outDir);
  fs.mkdirSync(path.join(outDir, "feedback"), { recursive: true });
  const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "mllm-grade-"));
  fs.chmodSync(tmpRoot, 0o711);
  const firstUid = args.firstUid ?? 61000;
  // Ctrl-C or SIGTERM in the middle of a class: Node's default would exit at once and leave the sandboxes' kernels to
  // bubblewrap and the copies of the students' work in tmpRoot. Kill every sandbox, remove tmpRoot, write nothing
  // (a gradebook already in --out stays as it was) and exit 130 / 143; `exit` handlers still run (kernel clients).
  const onSignal = (signal: NodeJS.Signals) => {
    log(`grading stopped by ${signal}: no gradebook written; the sandboxes are killed and their work folders removed`);
    for (let slot = 0; slot < jobs; slot++) killSandboxUserSync(firstUid + slot);
    fs.rmSync(tmpRoot, { recursive: true, force: true });
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const maxPoints = exercises.reduce((sum, e) => sum + e.points, 0);
  const hidePaths = [tmpRoot, root, path.dirname(path.resolve(labFile))].sort((a, b) => b.length - a.length);

  const gradeOne = async (submission: Submission, slot: number, index: number): Promise<Graded> => {
    const base: StudentGrade = {
      student: submission.student,
      lab: labName,
      file: submission.file,
      exercises: exercises.map((e) => ({ name: e.name, gradeId: e.gradeId, points: 0, max: e.points, reason: "not graded" })),
      total: 0,
      max: maxPoints,
      status: "",
      tampering: [],
      notes: [],
      review: [],
      events: [],
    };
    if (submission.problem) return { grade: { ...base, status: `error: ${submission.problem}` } };
    let student: Notebook;
    try {
      student = readNotebook(submission.file);
    } catch (error) {
      return {
        grade: {
          ...base,
          status: `error: ${(error as Error).message.split("\n")[0].split(path.resolve(submission.file)).join(path.basename(submission.file))}`,
        },
      };
    }
    let restored: Restored;
    try {
      restored = restoreSubmission(solution, student, path.basename(labFile));
    } catch (error) {
      return { grade: { ...base, status: `error: ${(error as Error).message}` } };
    }
    const workDir = path.join(tmpRoot, `job-${index}`);
    fs.mkdirSync(workDir, { mode: 0o711 });
    fs.chmodSync(workDir, 0o711);
    try {
      const result = await executeSubmission(restored, {
        projectRoot: root,
        dataDirs: args.dataDirs ?? [path.join(root, "data")],
        limits,
        uid: firstUid + slot,
        workDir,
        notebook: { name: path.basename(labFile), text: serializeNotebook(student) },
        cellTimeout: args.cellTimeout ?? 120,
        notebookTimeout: args.notebookTimeout ?? 900,
        outputLimit: args.outputLimit ?? 262144,
        maxRestarts: args.maxRestarts ?? 3,
      });
      const grades: ExerciseGrade[] = restored.exercises.map((exercise, k) => {
        const gradeIndex = restored.cells.findIndex((c) => c.role === "grade" && c.exercise === k);
        const answerIndex = restored.cells.findIndex((c) => c.role === "solution" && c.exercise === k);
        const check = result.runs.get(gradeIndex);
        const answer = result.runs.get(answerIndex);
        let reason = "passed";
        if (!result.passed[k]) {
          reason = check
            ? `check ${check.status === "error" ? "failed" : check.status}: ${check.message ?? ""}`
            : "check not run";
          if (answer && answer.status !== "ok")
            reason += ` (your answer cell: ${answer.status}${answer.message ? `: ${answer.message}` : ""})`;
        }
        return {
          name: exercise.name,
          gradeId: exercise.gradeId,
          points: result.passed[k] ? exercise.points : 0,
          max: exercise.points,
          reason: withoutPaths(reason, hidePaths),
        };
      });
      const total = grades.reduce((sum, g) => sum + g.points, 0);
      const incomplete = [...result.runs.values()].some((r) => r.status === "not run");
      const status = incomplete
        ? `graded (incomplete: ${[...result.runs.values()].find((r) => r.status === "not run")!.message})`
        : restored.tampering.length > 0
          ? "graded (tampering undone)"
          : "graded";
      const grade: StudentGrade = {
        ...base,
        exercises: grades,
        total,
        status: withoutPaths(status, hidePaths),
        tampering: restored.tampering,
        notes: restored.notes,
        review: reviewFlags(restored),
        events: result.events.map((e) => withoutPaths(e, hidePaths)),
      };
      return { grade, restored, runs: result.runs };
    } catch (error) {
      return {
        grade: { ...base, status: `error: the grader failed on this submission: ${(error as Error).message.split("\n")[0]}` },
      };
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  };

  const results: Graded[] = new Array(submissions.length);
  let next = 0;
  let done = 0;
  const worker = async (slot: number) => {
    while (next < submissions.length) {
      const index = next++;
      const submission = submissions[index];
      const started = Date.now();
      log(`grading ${submission.student} (${submission.file})`);
      const graded = await gradeOne(submission, slot, index);
      results[index] = graded;
      done++;
      const g = graded.grade;
      log(
        `[${done}/${submissions.length}] ${g.student}: ${g.total}/${g.max} — ${g.status} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, submissions.length) }, (_, slot) => worker(slot)));
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    fs.rmSync(tmpRoot, { recursive: true, force: true });
  }

  const rows = results.map((r) => r.grade);
  writeFileAtomic(path.join(outDir, "gradebook.csv"), gradebookCsv(rows, exercises));
  writeFileAtomic(path.join(outDir, "gradebook.json"), gradebookJson(labName, rows));
  for (const result of results) {
    writeFileAtomic(
      path.join(outDir, "feedback", `${safeFileName(result.grade.student)}.html`),
      feedbackHtml(result.grade, result.restored, result.runs, hidePaths),
    );
  }
  const graded = rows.filter((r) => !r.status.startsWith("error"));
  const mean = graded.length > 0 ? graded.reduce((s, r) => s + r.total, 0) / graded.length : 0;
  log(
    `${rows.length} submissions: ${graded.length} graded (mean ${mean.toFixed(2)} / ${maxPoints}), ${rows.length - graded.length} not gradable; tampering in ${rows.filter((r) => r.tampering.length > 0).length}; for review: ${rows.filter((r) => r.review.length > 0).length}`,
  );
  return rows;
}
