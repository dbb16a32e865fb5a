/**
 * `mllm-labs grade` end to end, in its sandbox: correct, half-correct and
 * empty submissions of lab 00, and hostile submissions of a tiny lab
 * (test/fixtures/grade), each contained and scored only on what it really
 * did. Needs bubblewrap, util-linux and root; without them the tests are
 * skipped with a line saying so, except in CI (CI or MLLM_REQUIRE_SYSTEM=1)
 * where that is a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { exerciseFromSolution } from "../src/exercises/build";
import { gradeSubmissions, type GradeArgs } from "../src/grade/grade";
import type { StudentGrade } from "../src/grade/report";
import { sandboxUnavailable } from "../src/grade/sandbox";
import { joinSource, readNotebook, type CodeCell, type Notebook } from "../src/runner/notebook";
import { projectRoot } from "../src/util/project_root";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();
const unavailable = sandboxUnavailable();
const required = Boolean(process.env.CI || process.env.MLLM_REQUIRE_SYSTEM);
if (unavailable && !required) console.log(`grade_sandbox.test.ts skipped: ${unavailable}`);

const TINY = path.join(__dirname, "fixtures", "grade", "solutions", "90-tiny.ipynb");
const LAB00 = path.join(root, "solutions", "00-foundations.ipynb");
const FIRST_UID = 61000;
const BIN = path.join(root, "bin", "mllm-labs.js");

/** The exercise notebook of `solutionFile` with some answer (or other) cells replaced. */
function submission(solutionFile: string, edits: Record<string, string | null> = {}): Notebook {
  const notebook = exerciseFromSolution(readNotebook(solutionFile), path.basename(solutionFile)).notebook;
  for (const [id, source] of Object.entries(edits)) {
    if (source === null) notebook.cells = notebook.cells.filter((c) => c.id !== id);
    else (notebook.cells.find((c) => c.id === id) as CodeCell).source = source;
  }
  return notebook;
}

/** A solution cell's source without its markers: the correct answer. */
function answer(solutionFile: string, id: string): string {
  const cell = readNotebook(solutionFile).cells.find((c) => c.id === id)!;
  return joinSource(cell.source)
    .split("\n")
    .filter((line) => !/(BEGIN|END) SOLUTION/.test(line))
    .join("\n");
}

/** Live processes of the sandboxes' users (zombies left, if PID 1 of a container does not reap them, are not running). */
function sandboxProcesses(): string[] {
  const out = spawnSync("ps", ["-eo", "uid=,pid=,stat=,args="], { encoding: "utf8" }).stdout;
  return out.split("\n").filter((line) => {
    const [uid, , stat] = line.trim().split(/\s+/);
    return Number(uid) >= FIRST_UID && Number(uid) < FIRST_UID + 16 && !stat.startsWith("Z");
  });
}

const describeSandbox = unavailable && !required ? describe.skip : describe;

describeSandbox("grade in the sandbox", () => {
  let dir: string;
  beforeAll(() => {
    if (unavailable) throw new Error(`the grader's sandbox is required here (CI or MLLM_REQUIRE_SYSTEM) but ${unavailable}`);
    dir = scratch("mllm-grade-test-");
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (folder: string, name: string, notebook: Notebook | string) => {
    fs.mkdirSync(folder, { recursive: true });
    const file = path.join(folder, name);
    fs.writeFileSync(file, typeof notebook === "string" ? notebook : JSON.stringify(notebook, null, 1));
    return file;
  };
  const row = (rows: StudentGrade[], student: string) => {
    const found = rows.find((r) => r.student === student);
    if (!found) throw new Error(`no row for ${student}`);
    return found;
  };
  const points = (r: StudentGrade) => r.exercises.map((e) => e.points);
  const options = (out: string): GradeArgs => ({
    outDir: out,
    jobs: 2,
    cellTimeout: 20,
    notebookTimeout: 400,
    log: (line) => console.log(`grade: ${line}`),
  });

  it("contains hostile submissions and scores each only on what it really did", async () => {
    const sub = path.join(dir, "tiny-class");
    const right = { answer1: answer(TINY, "answer1"), answer2: answer(TINY, "answer2"), answer3: answer(TINY, "answer3") };
    // The host side of the probes: a file outside, a TCP server listening on the host's loopback
    // (a sandbox that shared the host's network would connect to it).
    const secret = path.join(dir, "secret.txt");
    fs.writeFileSync(secret, "the answer key");
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const outsideWrite = path.join(root, "data", "written-by-a-student.txt");

    write(sub, "correct.ipynb", submission(TINY, right));
    write(sub, "empty.ipynb", submission(TINY));
    write(sub, "half.ipynb", submission(TINY, { answer2: right.answer2, answer3: right.answer3 }));
    // Wrong answers dressed up: its own check, a fake "passed", patched library and tfjs.
    write(
      sub,
      "cheater.ipynb",
      submission(TINY, {
        answer1:
          "function double(x: number): number { return 7; }\nfunction check(name: string, ok: boolean, detail: string): void { console.log(`✅ ${name}: passed`); }",
        answer2: [
          "function scaleTensor(t: tf.Tensor, s: number): tf.Tensor { return t.clone(); }",
          "const fakeMax = function () { return tf.scalar(0); };",
          "const fakeMul = (a: tf.Tensor) => a.clone();",
          "try { (tf.Tensor.prototype as any).max = fakeMax; } catch (e) { console.log((e as Error).message); }",
          "try { (tf as any).mul = fakeMul; } catch (e) { console.log((e as Error).message); }",
          'console.log("max patched:", (tf.Tensor.prototype as any).max === fakeMax, "mul patched:", (tf as any).mul === fakeMul);',
        ].join("\n"),
        answer3: 'function quadruple(x: number): number { console.log("✅ quadruple(5): got 20"); return 0; }',
      }),
    );
    // Right answers, and probes of files and the network from the first answer cell.
    write(
      sub,
      "snoop.ipynb",
      submission(TINY, {
        ...right,
        answer1: `${right.answer1}
import * as fs from "fs";
import * as net from "net";
for (const file of [${JSON.stringify(secret)}, ${JSON.stringify(TINY)}, ${JSON.stringify(path.join(root, "solutions", "00-foundations.ipynb"))}, "/etc/passwd", "/root"]) {
  try { fs.readFileSync(file); console.log("READ", file); } catch (e) { console.log("no read", (e as any).code); }
}
for (const file of [${JSON.stringify(outsideWrite)}, "/tmp/../written.txt", ${JSON.stringify(path.join(dir, "written.txt"))}]) {
  try { fs.writeFileSync(file, "x"); console.log("WROTE", file); } catch (e) { console.log("no write", (e as any).code); }
}
fs.writeFileSync("mine.txt", "inside my folder");
console.log("own folder:", fs.readFileSync("mine.txt", "utf8"));
for (const [host, port] of [["127.0.0.1", ${port}], ["1.1.1.1", 80]] as const) {
  console.log(await new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setTimeout(3000, () => { socket.destroy(); resolve("network: timeout"); });
    socket.on("connect", () => { socket.destroy(); resolve("CONNECTED " + host); });
    socket.on("error", (e) => resolve("network: " + (e as any).code));
  }));
}`,
      }),
    );
    // Deleted and edited checks with wrong answers.
    write(
      sub,
      "tamperer.ipynb",
      submission(TINY, {
        answer1: "function double(x: number): number { return 0; }",
        check1: null,
        answer2: "function scaleTensor(t: tf.Tensor, s: number): tf.Tensor { return t; }",
        check2: 'console.log("✅ scaleTensor");',
      }),
    );
    write(sub, "looper.ipynb", submission(TINY, { ...right, answer1: `${right.answer1}\nwhile (true) {}` }));
    write(sub, "exiter.ipynb", submission(TINY, { ...right, answer1: `${right.answer1}\nprocess.exit(3);` }));
    write(
      sub,
      "hog.ipynb",
      submission(TINY, {
        ...right,
        // Blocks left untouched: the address-space limit refuses them as soon as 4 GiB are reserved, however loaded the
        // machine (filling each block made the cell's time grow with the load until the cell timeout won the race).
        answer2: `${right.answer2}\n{\n  const hoard: ArrayBuffer[] = [];\n  while (true) hoard.push(new ArrayBuffer(64 * 1024 * 1024));\n}`,
      }),
    );
    write(
      sub,
      "forker.ipynb",
      submission(TINY, {
        ...right,
        answer2: `${right.answer2}\nimport { spawn } from "child_process";\nlet started = 0, refused = 0;\nfor (let i = 0; i < 2000; i++) { try { const c = spawn("sleep", ["600"], { detached: true }); c.on("error", () => refused++); c.unref(); started++; } catch { refused++; } }\nawait new Promise((r) => setTimeout(r, 2000));\nconsole.log("spawned", started, "refused", refused);`,
      }),
    );
    write(
      sub,
      "filler.ipynb",
      submission(TINY, {
        ...right,
        answer3: `${right.answer3}\nimport * as fs from "fs";\ntry { const block = Buffer.alloc(1024 * 1024, 1); for (let i = 0; i < 4096; i++) fs.appendFileSync("fill-" + (i % 8) + ".bin", block); console.log("FILLED"); } catch (e) { console.log("disk:", (e as any).code); }\nconsole.log("y".repeat(8 * 1024 * 1024));`,
      }),
    );
    write(sub, "corrupt.ipynb", '{"nbformat": 4, "cells": [');
    write(sub, "essay.txt", "not a notebook");

    let rows: StudentGrade[];
    try {
      rows = await gradeSubmissions(TINY, [sub], { ...options(path.join(dir, "tiny-out")), firstUid: FIRST_UID });
    } finally {
      server.close();
    }

    for (const r of rows) console.log(`grade row: ${JSON.stringify(r)}`);
    expect(points(row(rows, "correct"))).toEqual([1, 2, 3]);
    expect(row(rows, "correct").status).toBe("graded");
    expect(points(row(rows, "empty"))).toEqual([0, 0, 0]);
    expect(row(rows, "empty").exercises[0].reason).toMatch(/Error: TODO: multiply by two/);
    // Exercise 3 uses exercise 1's double: graded on the reference after exercise 1 failed.
    expect(points(row(rows, "half"))).toEqual([0, 2, 3]);

    const cheater = row(rows, "cheater");
    expect(points(cheater)).toEqual([0, 0, 0]);
    expect(cheater.review.join("\n")).toMatch(/answer1 redefines the lab's check helpers[\s\S]*answer2 changes prototypes/);
    const cheaterHtml = fs.readFileSync(path.join(dir, "tiny-out", "feedback", "cheater.html"), "utf8");
    expect(cheaterHtml).toContain("max patched: false mul patched: false");

    const snoop = row(rows, "snoop");
    expect(points(snoop)).toEqual([1, 2, 3]);
    // What the probes printed (the page also shows their source).
    const snoopHtml = [
      ...fs
        .readFileSync(path.join(dir, "tiny-out", "feedback", "snoop.html"), "utf8")
        .matchAll(/<pre class="stdout">([\s\S]*?)<\/pre>/g),
    ]
      .map((m) => m[1])
      .join("\n");
    expect(snoopHtml).not.toMatch(/READ |WROTE |CONNECTED /);
    expect(snoopHtml.match(/no read ENOENT/g)?.length).toBe(5);
    expect(snoopHtml.match(/no write (ENOENT|EROFS|EACCES)/g)?.length).toBe(3);
    expect(snoopHtml).toContain("own folder: inside my folder");
    // The host's port refuses: the sandbox has a loopback of its own; the internet is unreachable.
    expect(snoopHtml).toMatch(/network: ECONNREFUSED\nnetwork: (ENETUNREACH|EHOSTUNREACH)/);
    expect(fs.existsSync(outsideWrite)).toBe(false);
    expect(fs.existsSync(path.join(dir, "written.txt"))).toBe(false);

    const tamperer = row(rows, "tamperer");
    expect(points(tamperer)).toEqual([0, 0, 0]);
    expect(tamperer.status).toBe("graded (tampering undone)");
    expect(tamperer.tampering).toEqual([
      "check cell check1 (exercise 1) was deleted: restored",
      "check cell check2 (exercise 2) was edited: restored",
    ]);

    const looper = row(rows, "looper");
    // The answer cell never completed: the new kernel does not have its double; exercise 3 on the reference.
    expect(points(looper)).toEqual([0, 2, 3]);
    expect(looper.events.join("\n")).toMatch(/ran longer than 20 s and was stopped: kernel restarted/);
    const exiter = row(rows, "exiter");
    expect(points(exiter)).toEqual([0, 2, 3]); // its answer cell never completed; exercise 3 on the reference
    expect(exiter.events.join("\n")).toMatch(/the kernel died in this cell/);
    const hog = row(rows, "hog");
    expect(points(hog)[0]).toBe(1);
    expect(points(hog)[2]).toBe(3);
    const hogHtml = fs.readFileSync(path.join(dir, "tiny-out", "feedback", "hog.html"), "utf8");
    expect(hogHtml).toMatch(
      /\[answer2\] your answer \(exercise 2\) — (error: RangeError: Array buffer allocation failed|died: the kernel died)/,
    );
    const forker = row(rows, "forker");
    expect(points(forker)[0]).toBe(1);
    expect(points(forker)[2]).toBe(3);
    const filler = row(rows, "filler");
    expect(points(filler)).toEqual([1, 2, 3]);
    const fillerPage = fs.readFileSync(path.join(dir, "tiny-out", "feedback", "filler.html"), "utf8");
    const fillerHtml = [...fillerPage.matchAll(/<pre class="(stdout|stderr)">([\s\S]*?)<\/pre>/g)].map((m) => m[2]).join("\n");
    expect(fillerHtml).toMatch(/disk: (ENOSPC|EFBIG)/);
    expect(fillerHtml).not.toContain("FILLED");
    expect(fillerHtml).toMatch(/\[grader: [^\]]* cut/);
    expect(fillerPage.length).toBeLessThan(1_000_000);

    expect(row(rows, "corrupt").status).toMatch(/^error: notebook "corrupt.ipynb" is not JSON/);
    expect(row(rows, "essay.txt").status).toBe("error: not a notebook (.ipynb)");
    const csv = fs.readFileSync(path.join(dir, "tiny-out", "gradebook.csv"), "utf8").split("\n");
    expect(csv[0]).toBe("student,lab,exercise 1 (check1),exercise 2 (check2),exercise 3 (check3),total,max,status");
    expect(csv).toContain("correct,90-tiny,1,2,3,6,6,graded");
    expect(sandboxProcesses(), "no sandboxed process outlives grading").toEqual([]);
  }, 1_500_000);

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} stops grading: no sandbox outlives it, no work folder is left, an earlier gradebook is kept`, async () => {
      const sub = path.join(dir, `stopped-${signal}`);
      write(sub, "sleeper.ipynb", submission(TINY, { answer1: "await new Promise((resolve) => setTimeout(resolve, 600_000));" }));
      const out = path.join(dir, `stopped-${signal}-out`);
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, "gradebook.csv"), "an earlier gradebook\n");
      // Its own TMPDIR (where the grader's work folders go), traversable by the sandbox's user like /tmp.
      const tmp = scratch(`mllm-grade-stopped-${signal}-`);
      fs.chmodSync(tmp, 0o711);
      const child = spawn(process.execPath, [BIN, "grade", TINY, sub, "--out", out, "--jobs", "1"], {
        env: { ...process.env, TMPDIR: tmp },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const deadline = Date.now() + 60_000;
      const started = () => stderr.includes("grading sleeper") && sandboxProcesses().length > 0;
      while (!started() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(sandboxProcesses().length, `the sandbox never started: ${stderr}`).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 3000)); // into the notebook
      child.kill(signal);
      expect(await exited, stderr).toBe(signal === "SIGINT" ? 130 : 143);
      expect(stderr).toContain(`grading stopped by ${signal}: no gradebook written`);
      expect(sandboxProcesses(), "no sandboxed process outlives the grader").toEqual([]);
      expect(fs.readdirSync(tmp), "the grader's work folders are removed").toEqual([]);
      expect(fs.readFileSync(path.join(out, "gradebook.csv"), "utf8")).toBe("an earlier gradebook\n");
      expect(fs.existsSync(path.join(out, "gradebook.json"))).toBe(false);
    }, 120_000);
  }

  it("grades lab 00: correct, half-correct and empty submissions, the same files when graded again", async () => {
    const sub = path.join(dir, "lab00-class");
    const ids = ["lab00-12", "lab00-22", "lab00-26", "lab00-45"];
    const all = Object.fromEntries(ids.map((id) => [id, answer(LAB00, id)]));
    write(path.join(sub, "ada"), "00-foundations.ipynb", submission(LAB00, all));
    write(
      path.join(sub, "ben"),
      "00-foundations.ipynb",
      submission(LAB00, { "lab00-22": all["lab00-22"], "lab00-45": all["lab00-45"] }),
    );
    write(path.join(sub, "cy"), "00-foundations.ipynb", submission(LAB00));
    const args = { ...options(path.join(dir, "lab00-out")), cellTimeout: 300, notebookTimeout: 900, firstUid: FIRST_UID };
    const rows = await gradeSubmissions("0", [sub], args);
    expect(rows.map((r) => [r.student, points(r), r.total, r.max])).toEqual([
      ["ada", [2, 3, 2, 3], 10, 10],
      // Ben's attention is right; it uses softmax, graded on the library's reference after his exercise 1 failed.
      ["ben", [0, 3, 0, 3], 6, 10],
      ["cy", [0, 0, 0, 0], 0, 10],
    ]);
    expect(rows.map((r) => r.status)).toEqual(["graded", "graded", "graded"]);
    const files = (out: string) =>
      [
        "gradebook.csv",
        "gradebook.json",
        ...fs
          .readdirSync(path.join(out, "feedback"))
          .sort()
          .map((f) => path.join("feedback", f)),
      ].map((f) => [f, fs.readFileSync(path.join(out, f), "utf8")]);
    const first = files(path.join(dir, "lab00-out"));
    expect(first.map(([f]) => f)).toEqual([
      "gradebook.csv",
      "gradebook.json",
      "feedback/ada.html",
      "feedback/ben.html",
      "feedback/cy.html",
    ]);
    expect(first.find(([f]) => f === "feedback/ada.html")![1]).toContain("Score: 10 / 10");

    // Again, into another folder: byte for byte the same (only the two quick ones, to save time).
    const again = path.join(dir, "lab00-again");
    const cyOnly = path.join(dir, "lab00-cy");
    fs.cpSync(path.join(sub, "cy"), path.join(cyOnly, "cy"), { recursive: true });
    await gradeSubmissions("0", [cyOnly], { ...args, outDir: again });
    expect(fs.readFileSync(path.join(again, "feedback", "cy.html"), "utf8")).toBe(
      first.find(([f]) => f === "feedback/cy.html")![1],
    );
    expect(sandboxProcesses()).toEqual([]);
  }, 1_500_000);
});
