/**
 * The grader's pure parts: restoring a submission against its solution (and
 * reporting tampering), finding students in the arguments, capping outputs,
 * and writing a gradebook and feedback that cannot be turned against the
 * instructor. The sandboxed runs are in grade_sandbox.test.ts.
 */
import { describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { exerciseFromSolution } from "../src/exercises/build";
import { capOutputs } from "../src/grade/execute";
import { findSubmissions, resolveLab } from "../src/grade/grade";
import { feedbackHtml, gradebookCsv, type StudentGrade } from "../src/grade/report";
import { restoreSubmission } from "../src/grade/restore";
import { resolveLimits, sandboxedKernelArgv } from "../src/grade/sandbox";
import { projectRoot } from "../src/util/project_root";
import { readNotebook, type CodeCell, type Notebook } from "../src/runner/notebook";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const FIXTURE = path.join(__dirname, "fixtures", "grade", "solutions", "90-tiny.ipynb");
const solution = readNotebook(FIXTURE);
const released = () => exerciseFromSolution(solution, "90-tiny.ipynb").notebook;
const code = (nb: Notebook, id: string) => nb.cells.find((c) => c.id === id) as CodeCell;

describe("restoring a submission", () => {
  it("takes the answers from the student and every locked cell, hidden tests included, from the solution", () => {
    const student = released();
    code(student, "answer1").source = "function double(x: number): number { return x * 2; }";
    const restored = restoreSubmission(solution, student);
    expect(restored.tampering).toEqual([]);
    expect(restored.exercises.map((e) => [e.solutionId, e.gradeId, e.points])).toEqual([
      ["answer1", "check1", 1],
      ["answer2", "check2", 2],
      ["answer3", "check3", 3],
    ]);
    const cell = (id: string) => restored.cells.find((c) => c.id === id)!;
    expect(cell("answer1").source).toBe("function double(x: number): number { return x * 2; }");
    expect(cell("check1").source).toContain("double(-2.5)"); // the hidden test is back
    expect(cell("helpers")).toMatchObject({ role: "locked", helper: true });
    expect(restored.exercises[0].reference).toContain("return x + x");
  });

  it("reports edited, deleted and moved locked cells and restores them", () => {
    const student = released();
    code(student, "check2").source = 'console.log("✅ scaleTensor");';
    student.cells = student.cells.filter((c) => c.id !== "check1");
    const setup = student.cells.findIndex((c) => c.id === "setup");
    const helpers = student.cells.findIndex((c) => c.id === "helpers");
    [student.cells[setup], student.cells[helpers]] = [student.cells[helpers], student.cells[setup]];
    (code(student, "check3").metadata.nbgrader as any).points = 100;
    const restored = restoreSubmission(solution, student);
    expect(restored.tampering).toEqual([
      "cells were moved: the solution's order is used",
      "check cell check1 (exercise 1) was deleted: restored",
      "check cell check2 (exercise 2) was edited: restored",
      "check cell check3 (exercise 3): its grading metadata was edited: the solution's is used",
    ]);
    expect(restored.cells.filter((c) => c.role !== "markdown").map((c) => c.id)).toEqual([
      "setup",
      "helpers",
      "answer1",
      "check1",
      "answer2",
      "check2",
      "answer3",
      "check3",
      "finish",
    ]);
    expect(restored.cells.find((c) => c.id === "check2")!.source).toContain("maxAbsDiff(mine, reference)");
  });

  it("drops a cell added between an exercise and its check, keeps one added elsewhere", () => {
    const student = released();
    const at = student.cells.findIndex((c) => c.id === "answer2");
    const added = (id: string, source: string): CodeCell => ({
      cell_type: "code",
      id,
      metadata: {},
      execution_count: null,
      outputs: [],
      source,
    });
    student.cells.splice(at + 1, 0, added("sneaky", "function check() {}"));
    student.cells.splice(student.cells.findIndex((c) => c.id === "finish") + 1, 0, added("mine", "console.log('my own cell');"));
    const restored = restoreSubmission(solution, student);
    expect(restored.tampering).toEqual(["added code cell 6 (sneaky) sits between exercise 2 and its check: not run"]);
    expect(restored.notes).toEqual(["added code cell 11 (mine) after cell finish: run"]);
    const ids = restored.cells.map((c) => c.id);
    expect(ids).not.toContain("sneaky");
    expect(ids[ids.length - 1]).toBe("mine");
  });

  it("grades a deleted answer as empty", () => {
    const student = released();
    student.cells = student.cells.filter((c) => c.id !== "answer3");
    const restored = restoreSubmission(solution, student);
    expect(restored.tampering).toEqual(["answer cell answer3 (exercise 3) was deleted: graded as empty"]);
    expect(restored.cells.find((c) => c.id === "answer3")).toMatchObject({ role: "solution", source: "" });
  });
});

describe("finding submissions", () => {
  it("names students from files and folders, reports folders without a notebook and non-notebooks, and sorts", () => {
    const dir = scratch("mllm-grade-find-");
    try {
      const nb = JSON.stringify(released());
      fs.writeFileSync(path.join(dir, "zoe.ipynb"), nb);
      fs.mkdirSync(path.join(dir, "bob"));
      fs.writeFileSync(path.join(dir, "bob", "90-tiny.ipynb"), nb);
      fs.writeFileSync(path.join(dir, "bob", "scratch.ipynb"), nb);
      fs.mkdirSync(path.join(dir, "amy"));
      fs.writeFileSync(path.join(dir, "amy", "lab.ipynb"), nb);
      fs.mkdirSync(path.join(dir, "empty"));
      fs.writeFileSync(path.join(dir, "notes.txt"), "hello");
      const found = findSubmissions([dir, path.join(dir, "bob", "90-tiny.ipynb")], FIXTURE);
      expect(found.map((s) => [s.student, path.relative(dir, s.file), s.problem ?? ""])).toEqual([
        ["amy", path.join("amy", "lab.ipynb"), ""],
        ["bob", path.join("bob", "90-tiny.ipynb"), ""],
        ["bob (2)", path.join("bob", "90-tiny.ipynb"), ""],
        ["empty", "empty", "the folder holds no notebook"],
        ["notes.txt", "notes.txt", "not a notebook (.ipynb)"],
        ["zoe", "zoe.ipynb", ""],
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("resolves a lab number to its solution and refuses an unknown one", () => {
    expect(path.basename(resolveLab("0"))).toBe("00-foundations.ipynb");
    expect(() => resolveLab("77")).toThrow(/lab 77: expected one solutions\/77-\*\.ipynb, found none/);
  });
});

describe("outputs and reports", () => {
  it("caps a cell's outputs and says how much was cut", () => {
    const outputs = capOutputs([{ output_type: "stream", name: "stdout", text: "x".repeat(100_000) }], 1000);
    expect(JSON.stringify(outputs).length).toBeLessThan(2000);
    expect(outputs[outputs.length - 1]).toMatchObject({
      name: "stderr",
      text: expect.stringMatching(/grader: \d+ more bytes of output were cut/),
    });
  });

  const grade: StudentGrade = {
    student: '=HYPERLINK("x")',
    lab: "90-tiny",
    file: "x.ipynb",
    exercises: [
      {
        name: "exercise 1",
        gradeId: "check1",
        points: 0,
        max: 1,
        reason: "check failed: <script>alert(1)</script> at /secret/grader/path/file.ts",
      },
    ],
    total: 0,
    max: 1,
    status: "graded",
    tampering: [],
    notes: [],
    review: [],
    events: [],
  };

  it("writes CSV that a spreadsheet does not execute", () => {
    const csv = gradebookCsv([grade], [{ name: "exercise 1", gradeId: "check1" }]);
    expect(csv.split("\n")[0]).toBe("student,lab,exercise 1 (check1),total,max,status");
    expect(csv.split("\n")[1]).toBe(`"'=HYPERLINK(""x"")",90-tiny,0,0,1,graded`);
  });

  it("escapes the student's text and outputs in the feedback, shows SVG only as an image, hides grader paths", () => {
    const restored = restoreSubmission(solution, released());
    const index = restored.cells.findIndex((c) => c.id === "answer1");
    const runs = new Map([
      [
        index,
        {
          status: "ok" as const,
          outputs: [
            {
              output_type: "display_data" as const,
              data: { "text/html": "<script>steal()</script>", "text/plain": "<b>x</b>" },
              metadata: {},
            },
            { output_type: "display_data" as const, data: { "image/svg+xml": "<svg onload='steal()'/>" }, metadata: {} },
          ],
        },
      ],
    ]);
    const html = feedbackHtml(grade, restored, runs, ["/secret/grader"]);
    expect(html).not.toMatch(/<script>|steal\(\)|<b>x<\/b>|\/secret\/grader/);
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain('src="data:image/svg+xml;base64,');
    expect(html).toContain("&lt;b&gt;x&lt;/b&gt;");
  });
});

describe("the sandbox's command line", () => {
  const root = projectRoot();
  const argv = sandboxedKernelArgv({
    projectRoot: root,
    dataDirs: [path.join(root, "data")],
    guardDir: "/tmp/job/guard",
    connectionDir: "/tmp/job/connection",
    notebook: { hostPath: "/tmp/job/lab.ipynb", name: "lab.ipynb" },
    uid: 61003,
    limits: resolveLimits({ memoryMiB: 1024 }),
  });
  const bound = (flag: string) => argv.flatMap((arg, i) => (arg === flag ? [argv[i + 1]] : []));

  it("runs as its own user with limits, in every namespace, with no environment of the grader's", () => {
    expect(argv.slice(0, 5)).toEqual(["setpriv", "--reuid=61003", "--regid=61003", "--clear-groups", "--inh-caps=-all"]);
    expect(argv).toContain(`--as=${1024 * 1024 * 1024}`);
    expect(argv).toContain("--nproc=256");
    expect(argv).toEqual(expect.arrayContaining(["--unshare-all", "--die-with-parent", "--clearenv"]));
    expect(argv).not.toContain("--share-net");
    expect(bound("--remount-ro")).toEqual(["/dev", "/"]);
  });

  it("shows the project's runtime and data read-only, and nothing of solutions/, tests or the host's /tmp", () => {
    const readOnly = bound("--ro-bind");
    expect(readOnly).toEqual(
      expect.arrayContaining(["dist", "node_modules", "package.json", "data"].map((p) => path.join(root, p))),
    );
    expect(
      readOnly
        .filter((p) => p.startsWith(root))
        .map((p) => path.relative(root, p))
        .sort(),
    ).toEqual(
      ["build", "data", "display", "dist", "node_modules", "package.json"].filter((p) => fs.existsSync(path.join(root, p))),
    );
    expect(bound("--bind")).toEqual(["/tmp/job/connection"]);
    expect(bound("--tmpfs")).toEqual(["/dev/shm", "/tmp", path.join(root, "submission")]);
    expect(argv).not.toContain(path.join(root, "solutions"));
  });

  it("refuses limits that are not positive integers", () => {
    expect(() => resolveLimits({ memoryMiB: 0 })).toThrow(/memoryMiB must be a positive integer, got 0/);
  });
});
