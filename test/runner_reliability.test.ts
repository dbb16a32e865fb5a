/**
 * `mllm-labs run` and `check` under faults (issue 14): no kernel left behind
 * (signals, a failed write, a SIGKILL'd runner), partial notebooks that never
 * look executed, bad arguments refused before any cell runs, old nbformat and
 * a BOM accepted, one bad output becoming an error output, one-line schema errors.
 * Leaks are checked by looking for the kernel's pid (and a child a cell
 * started) after the runner is gone.
 */
import { describe, expect, it } from "vitest";
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { runNotebook, runNotebooks, MAX_TIMEOUT_SECONDS, PARTIAL_RUN_KEY } from "../src/runner/run";
import { readNotebook, validateNotebook, writeNotebook, type Notebook } from "../src/runner/notebook";
import { OutputRecorder } from "../src/runner/outputs";
import { compareNotebooks, formatReport } from "../src/checker/check";
import { projectRoot } from "../src/util/project_root";
import { missingSystem, privateMountNamespace, READ_ONLY_BIND_SCRIPT, READ_ONLY_MOUNT, skipWithout } from "./helpers/system";
import { scratchFolders } from "./helpers/scratch";
import { alive } from "./helpers/process";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const BIN = path.join(projectRoot(), "bin", "mllm-labs.js");

function tempDir(): string {
  return scratch("mllm-labs-rel-");
}

/** A notebook whose code cells all carry a stale output and execution count, as an executed one does. */
function notebookFile(dir: string, sources: string[], name = "t.ipynb", metadata: Record<string, unknown> = {}): string {
  const file = path.join(dir, name);
  const notebook: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata,
    cells: sources.map((source, i) => ({
      cell_type: "code",
      id: `c${i}`,
      source,
      metadata: {},
      execution_count: i + 1,
      outputs: [{ output_type: "stream", name: "stdout", text: [`stale ${i}\n`] }],
    })),
  };
  writeNotebook(file, notebook);
  return file;
}

/** A cell that writes the kernel's pid and a child process's pid to `pids.txt`, then waits. */
const LONG_CELL = [
  'import * as cp from "child_process";',
  'import * as fs from "fs";',
  'const child = cp.spawn("sleep", ["300"], { stdio: "ignore" });',
  'fs.writeFileSync("pids.txt.tmp", `${process.pid} ${child.pid}`);',
  'fs.renameSync("pids.txt.tmp", "pids.txt");',
  "await new Promise((resolve) => setTimeout(resolve, 120_000));",
].join("\n");

async function waitFor<T>(probe: () => T | undefined, seconds: number, what: string): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function readPids(dir: string): number[] | undefined {
  const file = path.join(dir, "pids.txt");
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split(" ").map(Number) : undefined;
}

/** Starts the CLI runner on a notebook with its own TMPDIR (where the connection folder goes). */
function startRunner(dir: string, notebook: string) {
  const tmp = path.join(dir, "tmp");
  fs.mkdirSync(tmp);
  const child = spawn(process.execPath, [BIN, "run", notebook, "--out", path.join(dir, "out")], {
    cwd: dir,
    env: { ...process.env, TMPDIR: tmp },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, tmp, output: () => ({ stdout, stderr }) };
}

describe("mllm-labs run leaves no kernel behind", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`on ${signal}: interrupts, writes the partial notebook, kills the kernel and what its cell started, removes its temporary folder`, async () => {
      const dir = tempDir();
      const file = notebookFile(dir, ['console.log("first")', LONG_CELL, 'console.log("never")']);
      const runner = startRunner(dir, file);
      const [kernel, child] = await waitFor(() => readPids(dir), 60, "the long cell to start");
      expect(alive(kernel) && alive(child)).toBe(true);
      runner.child.kill(signal);
      const exit = await runner.exited;
      expect(exit.code, runner.output().stderr).toBe(signal === "SIGINT" ? 130 : 143);
      expect(runner.output().stdout).toMatch(new RegExp(`FAILED .*\\n  stopped by ${signal} after 2 of 3 code cells`));
      await waitFor(
        () => (!alive(kernel) && !alive(child) ? true : undefined),
        5,
        `kernel ${kernel} and its child ${child} to be gone`,
      );
      expect(fs.readdirSync(runner.tmp)).toEqual([]);
      expect(fs.readdirSync(path.join(dir, "out"))).toEqual(["t.ipynb"]);
      const written = readNotebook(path.join(dir, "out", "t.ipynb"));
      const cells = written.cells as any[];
      expect(cells[0].outputs[0].text).toEqual(["first\n"]);
      expect(cells[1].outputs[0]).toMatchObject({ output_type: "error", ename: "KeyboardInterrupt" });
      expect(cells[2]).toMatchObject({ execution_count: null, outputs: [] });
      expect(written.metadata[PARTIAL_RUN_KEY]).toMatchObject({ cells_run: 2, code_cells: 3 });
    }, 90_000);
  }

  it("a runner killed with SIGKILL leaves a kernel that notices and exits, with its child and connection folder", async () => {
    const dir = tempDir();
    const file = notebookFile(dir, [LONG_CELL]);
    const runner = startRunner(dir, file);
    const [kernel, child] = await waitFor(() => readPids(dir), 60, "the long cell to start");
    runner.child.kill("SIGKILL");
    await runner.exited;
    await waitFor(
      () => (!alive(kernel) && !alive(child) ? true : undefined),
      10,
      `kernel ${kernel} and its child ${child} to be gone`,
    );
    expect(fs.readdirSync(runner.tmp)).toEqual([]);
  }, 90_000);

  it("on a failed write: the kernel is shut down and no temporary file is left", async () => {
    const dir = tempDir();
    const outDir = path.join(dir, "out");
    // The cell puts a folder where the notebook is to be written, so the final rename fails.
    const file = notebookFile(dir, [
      `require("fs").mkdirSync(${JSON.stringify(path.join(outDir, "t.ipynb"))}, { recursive: true }); require("fs").writeFileSync("pids.txt", String(process.pid))`,
    ]);
    const error = await runNotebook(file, { outDir }).catch((e) => e);
    expect(String(error)).toMatch(/t\.ipynb/);
    const [kernel] = readPids(dir)!;
    await waitFor(() => (!alive(kernel) ? true : undefined), 5, `kernel ${kernel} to be gone`);
    expect(fs.readdirSync(outDir)).toEqual(["t.ipynb"]);
  }, 60_000);
});

describe("partial notebooks never look executed", () => {
  it("clears cells after a failure, keeps the original with --in-place, and check reports the cells that did not run", async () => {
    const dir = tempDir();
    const file = notebookFile(dir, ['console.log("one")', 'throw new Error("boom")', 'console.log("three")']);
    const original = fs.readFileSync(file, "utf8");
    const result = await runNotebook(file, { inPlace: true });
    expect(result.ok).toBe(false);
    expect(fs.readFileSync(file, "utf8")).toBe(original);
    expect(result.output).toBe(path.join(dir, "t.partial.ipynb"));
    const partial = readNotebook(result.output);
    const cells = partial.cells as any[];
    expect(cells[1].outputs[0]).toMatchObject({ output_type: "error", evalue: "boom" });
    expect(cells[2]).toMatchObject({ execution_count: null, outputs: [] });
    const differences = await compareNotebooks(partial, readNotebook(file));
    const notRun = differences.filter((d) => d.difference.where === "not run");
    expect(notRun.map((d) => d.cell)).toEqual([3]);
    expect(notRun[0].difference.message).toMatch(/the run stopped early: cell 2 .*boom/);
  }, 60_000);

  it("a display value that is not valid nbformat becomes an error output on its cell; the notebook is still written", async () => {
    const dir = tempDir();
    const file = notebookFile(dir, [
      '(globalThis as any)[Symbol.for("mllm-labs.kernel-host")].display({ data: { "text/plain": 5 } }); console.log("after")',
    ]);
    const result = await runNotebook(file, { outDir: path.join(dir, "out") });
    expect(result.ok, result.failure).toBe(true);
    const cells = readNotebook(result.output).cells as any[];
    expect(cells[0].outputs[0]).toMatchObject({ output_type: "error", ename: "InvalidOutputError" });
    expect(cells[0].outputs[0].evalue).toMatch(/display_data field "data.text\/plain": must be/);
    expect(cells[0].outputs[1].text).toEqual(["after\n"]);
  }, 60_000);
});

describe("bad arguments are refused before any cell runs", () => {
  /** A notebook whose only cell would leave a mark if it ran. */
  function markingNotebook(dir: string, name = "t.ipynb", metadata: Record<string, unknown> = {}): string {
    return notebookFile(dir, ['require("fs").writeFileSync("ran.txt", "")'], name, metadata);
  }

  it("an --out that is a file, or below a file", async () => {
    const dir = tempDir();
    const file = markingNotebook(dir);
    const blocker = path.join(dir, "a-file");
    fs.writeFileSync(blocker, "");
    await expect(runNotebook(file, { outDir: blocker })).rejects.toThrow(/--out ".*a-file" is a file, not a folder/);
    await expect(runNotebook(file, { outDir: path.join(blocker, "sub") })).rejects.toThrow(
      /--out ".*a-file\/sub" is not writable: .*ENOTDIR/,
    );
    expect(fs.existsSync(path.join(dir, "ran.txt"))).toBe(false);
  });

  // Root ignores permission bits: as root the folder is made read-only by a bind mount in a private mount namespace.
  const asRoot = process.getuid?.() === 0;
  const readOnlyMountTest = "read-only --out test as root";
  it.skipIf(asRoot && skipWithout(readOnlyMountTest, READ_ONLY_MOUNT))(
    "a read-only --out folder",
    async () => {
      const dir = tempDir();
      const file = markingNotebook(dir);
      const readOnly = path.join(dir, "ro");
      if (!asRoot) {
        fs.mkdirSync(readOnly, { mode: 0o555 });
        await expect(runNotebook(file, { outDir: readOnly })).rejects.toThrow(/--out ".*ro" is not writable: .*EACCES/);
        return;
      }
      expect(missingSystem(readOnlyMountTest, READ_ONLY_MOUNT), "required (MLLM_REQUIRE_SYSTEM=1) but missing").toEqual([]);
      fs.mkdirSync(readOnly);
      const { unshareFlags } = privateMountNamespace() as { unshareFlags: string[] };
      // unshare [-m|-rm] sh -c "mount ro; exec node mllm-labs run t.ipynb --out ro": the CLI sees the folder read-only.
      const cli = [process.execPath, BIN, "run", file, "--out", readOnly];
      const runner = spawn("unshare", [...unshareFlags, "sh", "-c", READ_ONLY_BIND_SCRIPT, "sh", readOnly, ...cli], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      runner.stderr.on("data", (chunk) => (stderr += chunk));
      const code = await new Promise((resolve) => runner.on("exit", resolve));
      expect(stderr).toMatch(/--out ".*ro" is not writable: .*EROFS/);
      expect(code, stderr).toBe(2);
      expect(fs.existsSync(path.join(dir, "ran.txt"))).toBe(false);
      expect(fs.readdirSync(readOnly)).toEqual([]);
    },
    120_000,
  );

  it("a notebook for another kernel language", async () => {
    const dir = tempDir();
    const file = markingNotebook(dir, "py.ipynb", {
      kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
    });
    await expect(runNotebook(file, { outDir: path.join(dir, "out") })).rejects.toThrow(
      /py\.ipynb" is for the kernel language "python" \(kernelspec "python3"\); the lab kernel runs typescript or javascript/,
    );
  });

  it("two inputs with the same file name for one --out folder, refused before the first runs", async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, "a"));
    fs.mkdirSync(path.join(dir, "b"));
    const a = markingNotebook(path.join(dir, "a"));
    const b = markingNotebook(path.join(dir, "b"));
    await expect(runNotebooks([a, b], { outDir: path.join(dir, "out") })).rejects.toThrow(
      /a\/t\.ipynb" and ".*b\/t\.ipynb" would both be written to/,
    );
    expect(fs.existsSync(path.join(dir, "a", "ran.txt"))).toBe(false);
  });

  it("a --timeout no timer can hold, or not a positive number", async () => {
    const dir = tempDir();
    const file = markingNotebook(dir);
    await expect(runNotebook(file, { timeout: MAX_TIMEOUT_SECONDS + 1 })).rejects.toThrow(
      /--timeout 2147484 s is more than a timer can hold; the most is 2147483 s/,
    );
    await expect(runNotebook(file, { timeout: Number.NaN })).rejects.toThrow(
      /--timeout must be a positive number of seconds, got null/,
    );
  });

  it("the CLI says so and exits 2 without starting a kernel", async () => {
    const dir = tempDir();
    const file = markingNotebook(dir);
    const runner = spawn(process.execPath, [BIN, "run", file, "--timeout", "1e12"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    runner.stderr.on("data", (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => runner.on("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/--timeout 1000000000000 s is more than a timer can hold/);
    expect(fs.existsSync(path.join(dir, "ran.txt"))).toBe(false);
  });
});

describe("reading notebooks", () => {
  it("accepts nbformat 4.0–4.4 without cell ids, upgrading to 4.5 with stable ids, and a byte order mark", () => {
    const dir = tempDir();
    const file = path.join(dir, "old.ipynb");
    const old = {
      nbformat: 4,
      nbformat_minor: 2,
      metadata: {},
      cells: [
        { cell_type: "markdown", metadata: {}, source: "# old" },
        { cell_type: "code", metadata: {}, source: "1", execution_count: null, outputs: [] },
      ],
    };
    fs.writeFileSync(file, "\ufeff" + JSON.stringify(old));
    const notebook = readNotebook(file);
    expect(notebook.nbformat_minor).toBe(5);
    const ids = notebook.cells.map((cell) => cell.id);
    expect(new Set(ids).size).toBe(2);
    expect(ids.every((id) => /^[a-f0-9]{8}$/.test(id!))).toBe(true);
    expect(readNotebook(file).cells.map((cell) => cell.id)).toEqual(ids);
    expect(validateNotebook(notebook)).toEqual([]);
  });

  it("names the cell and the field of a schema error in one line", () => {
    const dir = tempDir();
    const file = path.join(dir, "bad.ipynb");
    const notebook = {
      nbformat: 4,
      nbformat_minor: 5,
      metadata: {},
      cells: [
        { cell_type: "markdown", id: "m", metadata: {}, source: "ok" },
        {
          cell_type: "code",
          id: "c",
          metadata: {},
          source: "1",
          execution_count: null,
          outputs: [{ output_type: "display_data", data: { "image/png": 7 }, metadata: {} }],
        },
        { cell_type: "code", id: "d", metadata: {}, source: "1", outputs: [] },
      ],
    };
    fs.writeFileSync(file, JSON.stringify(notebook));
    const error = (() => {
      try {
        readNotebook(file);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message.split("\n")).toHaveLength(1);
    expect(error?.message).toMatch(
      /bad\.ipynb" is not valid nbformat 4\.5: cell 2 \(code, id "c"\): output 1 \(outputs\[0\]\): display_data field "data\.image\/png": must be/,
    );
    expect(error?.message).toMatch(/cell 3 \(code, id "d"\): the object: must have required property 'execution_count'/);
  });
});

describe("output recorder", () => {
  it("turns an invalid display and an invalid update into error outputs, keeping the valid display", () => {
    const recorder = new OutputRecorder();
    const outputs = recorder.startCell();
    const message = (msg_type: string, content: Record<string, unknown>) => ({ header: { msg_type }, content }) as any;
    recorder.handle(message("display_data", { data: { "text/plain": "fine" }, metadata: {}, transient: { display_id: "x" } }));
    recorder.handle(
      message("update_display_data", { data: { "text/plain": { not: "text" } }, metadata: {}, transient: { display_id: "x" } }),
    );
    recorder.handle(message("execute_result", { data: { "text/html": 3 }, metadata: {}, execution_count: 1 }));
    expect(outputs[0]).toMatchObject({ output_type: "display_data", data: { "text/plain": ["fine"] } });
    expect(outputs.slice(1).map((o: any) => o.ename)).toEqual(["InvalidOutputError", "InvalidOutputError"]);
    expect((outputs[2] as any).evalue).toMatch(/execute_result field "data.text\/html": must be/);
  });
});

describe("check", () => {
  it("formats the report of a notebook that did not run fully", async () => {
    const dir = tempDir();
    const reference = readNotebook(notebookFile(dir, ["1", "2"]));
    const executed = JSON.parse(JSON.stringify(reference)) as Notebook;
    (executed.cells[1] as any).outputs = [];
    (executed.cells[1] as any).execution_count = null;
    const differences = await compareNotebooks(executed, reference);
    expect(formatReport(differences, "a", "b")).toMatch(/cell 2 \(2\), execution: not run: the cell did not run/);
  });
});
