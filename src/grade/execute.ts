/**
 * Executing one restored submission in its sandbox, cell by cell, without
 * stopping at a failing cell, and deciding each check from the kernel's
 * execute reply (`status: "error"`), never from printed text.
 *
 * Between the student's cells the grader runs steps of its own, whose outputs
 * are not shown:
 * - before the first cell the student wrote, a seal: the library's and
 *   TensorFlow.js's module objects, their classes and prototypes, `Math`,
 *   `JSON` and the array prototypes are frozen, so a student's cell cannot
 *   patch the functions the checks compare with;
 * - before every check, the locked cells' `import` lines and the cells tagged
 *   `grade-helpers` are run again, so a `check` or `maxAbsDiff` (or `tf`) the
 *   student redefined is replaced by the lab's own;
 * - after a failed check, the exercise's reference (the solution cell's
 *   `metadata.mllm_labs.reference`), so later exercises that use it are graded
 *   on their own.
 * A cell that runs past its time limit or kills the kernel scores what it
 * scores (0 for its exercise); the kernel is restarted and every step that had
 * completed is replayed, then grading goes on.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { KernelClient, KernelError } from "../runner/kernel_client";
import { OutputRecorder } from "../runner/outputs";
import type { Output } from "../runner/notebook";
import type { Restored, PlannedCell } from "./restore";
import { sandboxedKernelArgv, type ResolvedSandboxLimits } from "./sandbox";

/** Options for {@link executeSubmission}. */
export interface ExecuteArgs {
  projectRoot: string;
  dataDirs: string[];
  limits: ResolvedSandboxLimits;
  /** Host user id of this job's sandbox. */
  uid: number;
  /** A private host folder for this submission (connection sockets, the notebook copy); removed by the caller. */
  workDir: string;
  /** The exercise notebook's file name and text, copied into the sandbox. */
  notebook: { name: string; text: string };
  /** Seconds each cell may run. */
  cellTimeout: number;
  /** Seconds the whole submission may run (kernel restarts included). */
  notebookTimeout: number;
  /** Bytes of output kept per cell; the rest is cut with a note. */
  outputLimit: number;
  /** Kernel restarts allowed after a cell timed out or killed the kernel. */
  maxRestarts: number;
  log?: (line: string) => void;
}

/** What happened to one cell. */
export interface CellRun {
  status: "ok" | "error" | "timeout" | "died" | "not run";
  outputs: Output[];
  /** For errors: `ename: evalue`; for the others, why. */
  message?: string;
}

export interface ExecutionResult {
  /** By index into `restored.cells` (code cells only). */
  runs: Map<number, CellRun>;
  /** Per exercise: whether its check passed. */
  passed: boolean[];
  /** Restarts, time limit, kernel problems, in order. */
  events: string[];
  seconds: number;
}

/** The seal (see the header). Plain TypeScript run in the kernel. */
export const SEAL_SOURCE = `{
  const sealed = new Set<unknown>();
  const isNamespace = (o: any) => o !== null && typeof o === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(o))
    && Object.values(Object.getOwnPropertyDescriptors(o)).every((d: any) => !("value" in d) || typeof d.value === "function" || (d.value !== null && typeof d.value === "object") || typeof d.value !== "object");
  const seal = (value: any, depth: number): void => {
    if (value === null || (typeof value !== "object" && typeof value !== "function") || sealed.has(value)) return;
    sealed.add(value);
    if (typeof value === "function") {
      if (value.prototype && typeof value.prototype === "object") Object.freeze(value.prototype);
      Object.freeze(value);
      return;
    }
    if (depth > 2 || !isNamespace(value)) return;
    for (const d of Object.values(Object.getOwnPropertyDescriptors(value)) as any[]) if ("value" in d) seal(d.value, depth + 1);
    Object.freeze(value);
  };
  for (const name of ["@tensorflow/tfjs", "@tensorflow/tfjs-core", "mllm-labs", "mllm-labs/display"]) seal(require(name), 0);
  const typedArray = Object.getPrototypeOf(Float32Array);
  for (const intrinsic of [Math, JSON, Array.prototype, typedArray.prototype, Float32Array.prototype, Int32Array.prototype, Uint8Array.prototype, Number.prototype]) Object.freeze(intrinsic);
}`;

/** Seconds the warm-up (the lab's imports in a new kernel) may take. */
const WARM_UP_SECONDS = 180;

const IMPORT_LINE = /^\s*import\s[^;]*\sfrom\s+["'][^"']+["'];?\s*$|^\s*import\s+["'][^"']+["'];?\s*$/;

function importLines(source: string): string[] {
  return source.split("\n").filter((line) => IMPORT_LINE.test(line));
}

function outputBytes(output: Output): number {
  return JSON.stringify(output).length;
}

/** Keeps a cell's outputs under `limit` bytes: the first ones whole, a note for the rest. */
export function capOutputs(outputs: Output[], limit: number): Output[] {
  const kept: Output[] = [];
  let used = 0;
  let dropped = 0;
  for (const output of outputs) {
    const size = outputBytes(output);
    if (used + size <= limit) {
      kept.push(output);
      used += size;
      continue;
    }
    if (output.output_type === "stream" && used < limit) {
      const text = Array.isArray(output.text) ? output.text.join("") : output.text;
      const room = Math.max(0, limit - used - 200);
      kept.push({ ...output, text: text.slice(0, room) });
      used = limit;
      dropped += text.length - room;
      continue;
    }
    dropped += size;
  }
  if (dropped > 0)
    kept.push({
      output_type: "stream",
      name: "stderr",
      text: `[grader: ${dropped} more bytes of output were cut; each cell keeps ${limit} bytes]\n`,
    });
  return kept;
}

/** Executes the restored submission; never throws for anything the submission does. */
export async function executeSubmission(restored: Restored, args: ExecuteArgs): Promise<ExecutionResult> {
  const log = args.log ?? (() => undefined);
  const started = Date.now();
  const deadline = started + args.notebookTimeout * 1000;
  const runs = new Map<number, CellRun>();
  const passed = restored.exercises.map(() => false);
  const events: string[] = [];
  const connectionDir = path.join(args.workDir, "connection");
  fs.mkdirSync(connectionDir, { recursive: true, mode: 0o700 });
  fs.chownSync(connectionDir, args.uid, args.uid);
  const notebookCopy = path.join(args.workDir, args.notebook.name);
  fs.writeFileSync(notebookCopy, args.notebook.text, { mode: 0o644 });
  const guardDir = path.join(args.workDir, "guard");
  fs.mkdirSync(path.join(guardDir, "node_modules"), { recursive: true });
  fs.writeFileSync(path.join(guardDir, "package.json"), '{ "private": true }\n');
  const argv = sandboxedKernelArgv({
    guardDir,
    projectRoot: args.projectRoot,
    dataDirs: args.dataDirs,
    connectionDir,
    notebook: { hostPath: notebookCopy, name: args.notebook.name },
    uid: args.uid,
    limits: args.limits,
  });
  // Warm-up: the lab's imports, run once per kernel before any timed cell (the
  // first cell that imports TensorFlow.js compiles its types: seconds, not a
  // student's fault).
  const warmUp = restored.cells
    .flatMap((c) => (c.role === "locked" || c.role === "grade" ? importLines(c.source) : []))
    .join("\n");
  const start = async (): Promise<KernelClient> => {
    const kernel = await KernelClient.start({
      argv,
      transport: "ipc",
      connectionDir,
      connectionFileOwner: { uid: args.uid, gid: args.uid },
      startTimeout: 120,
    });
    if (warmUp) {
      const left = (deadline - Date.now()) / 1000;
      try {
        await kernel.execute(warmUp, { timeout: Math.max(1, Math.min(WARM_UP_SECONDS, left)) });
      } catch (error) {
        await kernel.shutdown(1).catch(() => undefined);
        throw error;
      }
    }
    return kernel;
  };

  /** Steps that completed (ok or error), replayed after a restart. */
  const history: string[] = [];
  let client: KernelClient | undefined;
  let restarts = 0;
  let broken: string | undefined;

  const restart = async (why: string): Promise<void> => {
    await client?.shutdown(1).catch(() => undefined);
    client = undefined;
    if (restarts >= args.maxRestarts) {
      broken = `${why}; no more kernel restarts (${args.maxRestarts} allowed)`;
      return;
    }
    restarts++;
    events.push(`${why}: kernel restarted, ${history.length} earlier steps replayed`);
    try {
      client = await start();
      for (const source of history) {
        const left = (deadline - Date.now()) / 1000;
        if (left <= 0) throw new Error("the notebook's time limit was reached during the replay");
        await client.execute(source, { timeout: Math.min(args.cellTimeout, left) });
      }
    } catch (error) {
      broken = `the kernel could not be brought back after ${why}: ${(error as Error).message.split("\n")[0]}`;
      await client?.shutdown(1).catch(() => undefined);
      client = undefined;
    }
  };

  /** Runs one step; `record` keeps its outputs. */
  const step = async (source: string, record: boolean): Promise<CellRun> => {
    if (broken) return { status: "not run", outputs: [], message: broken };
    const left = (deadline - Date.now()) / 1000;
    if (left <= 0) {
      broken = `the notebook's time limit (${args.notebookTimeout} s) was reached`;
      events.push(broken);
      return { status: "not run", outputs: [], message: broken };
    }
    if (!client) {
      try {
        client = await start();
      } catch (error) {
        broken = `the kernel did not start: ${(error as Error).message.split("\n")[0]}`;
        events.push(broken);
        return { status: "not run", outputs: [], message: broken };
      }
    }
    if (source.trim() === "") return { status: "ok", outputs: [] };
    const recorder = new OutputRecorder();
    recorder.startCell();
    let bytes = 0;
    let cut = false;
    const timeout = Math.min(args.cellTimeout, left);
    try {
      const { reply } = await client.execute(source, {
        timeout,
        onMessage: (message) => {
          if (!record) return;
          // Keep at most the limit (plus a little, cut below by capOutputs): a
          // stream's text is clipped, other outputs past the limit dropped.
          const room = args.outputLimit + 4096 - bytes;
          if (room <= 0) {
            cut = true;
            return;
          }
          if (
            message.header.msg_type === "stream" &&
            typeof message.content.text === "string" &&
            message.content.text.length > room
          ) {
            message = { ...message, content: { ...message.content, text: message.content.text.slice(0, room) } };
            cut = true;
          }
          bytes += JSON.stringify(message.content).length;
          recorder.handle(message);
        },
      });
      history.push(source);
      const outputs = capOutputs(recorder.current, args.outputLimit);
      if (cut && !outputs.some((o) => o.output_type === "stream" && String(o.text).startsWith("[grader"))) {
        outputs.push({
          output_type: "stream",
          name: "stderr",
          text: `[grader: output past ${args.outputLimit} bytes was cut]\n`,
        });
      }
      if (reply.content.status === "error") {
        return { status: "error", outputs, message: `${reply.content.ename}: ${reply.content.evalue}` };
      }
      return { status: "ok", outputs };
    } catch (error) {
      const outputs = capOutputs(recorder.current, args.outputLimit);
      if (error instanceof KernelError && error.kind === "timeout") {
        const message =
          timeout < args.cellTimeout
            ? `the notebook's time limit (${args.notebookTimeout} s) was reached in this cell`
            : `the cell ran longer than ${args.cellTimeout} s and was stopped`;
        await restart(message);
        return { status: "timeout", outputs, message };
      }
      const message =
        error instanceof KernelError && error.kind === "died"
          ? `the kernel died in this cell (${error.message}): memory or process limit, or the code exited`
          : `the kernel failed: ${(error as Error).message.split("\n")[0]}`;
      await restart(message);
      return { status: "died", outputs, message };
    }
  };

  const internal = async (what: string, source: string): Promise<void> => {
    const run = await step(source, false);
    if (run.status !== "ok" && run.status !== "not run") events.push(`grader step (${what}) failed: ${run.message}`);
  };

  try {
    let sealed = false;
    const codeCells = restored.cells
      .map((cell, index) => ({ cell, index }))
      .filter((c): c is { cell: PlannedCell; index: number } => c.cell.role !== "markdown");
    for (const [k, { cell, index }] of codeCells.entries()) {
      if (!sealed && (cell.role === "solution" || cell.role === "added")) {
        await internal("seal", SEAL_SOURCE);
        sealed = true;
      }
      if (cell.role === "grade" && sealed) {
        const earlier = codeCells
          .slice(0, k)
          .filter((c) => c.cell.role === "locked")
          .map((c) => c.cell);
        const imports = earlier.flatMap((c) => importLines(c.source));
        if (imports.length > 0) await internal("imports", imports.join("\n"));
        for (const helper of earlier.filter((c) => c.helper)) await internal(`helpers ${helper.id}`, helper.source);
      }
      log(`cell ${k + 1}/${codeCells.length} (${cell.role} ${cell.id})`);
      const run = await step(cell.source, true);
      runs.set(index, run);
      if (cell.role === "grade" && cell.exercise !== undefined) {
        passed[cell.exercise] = run.status === "ok";
        const reference = restored.exercises[cell.exercise].reference;
        if (run.status !== "ok" && reference)
          await internal(`reference for ${restored.exercises[cell.exercise].name}`, reference);
      }
    }
  } finally {
    await client?.shutdown(2).catch(() => undefined);
    await killSandboxUser(args.uid);
  }
  return { runs, passed, events, seconds: (Date.now() - started) / 1000 };
}

/** Live (not zombie) processes of a host user id, from /proc. */
export function processesOf(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${entry}/status`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const owner = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const state = /^State:\s+(\w)/m.exec(status)?.[1];
    if (Number(owner) === uid && state !== "Z") pids.push(Number(entry));
  }
  return pids;
}

/**
 * Kills whatever still runs as the sandbox's user (a sandbox being torn down,
 * or anything that escaped its process group) and waits until it is gone:
 * `kill -KILL -1` run as that user reaches exactly its processes.
 */
export async function killSandboxUser(uid: number, waitSeconds = 10): Promise<void> {
  const deadline = Date.now() + waitSeconds * 1000;
  while (processesOf(uid).length > 0 && Date.now() < deadline) {
    killSandboxUserOnce(uid);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One `kill -KILL -1` as the sandbox's user. */
function killSandboxUserOnce(uid: number): void {
  spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "kill", "-KILL", "-1"], { stdio: "ignore" });
}

/** {@link killSandboxUser}, synchronously: for a signal handler that is about to exit the process. */
export function killSandboxUserSync(uid: number, waitSeconds = 5): void {
  const deadline = Date.now() + waitSeconds * 1000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (processesOf(uid).length > 0 && Date.now() < deadline) {
    killSandboxUserOnce(uid);
    Atomics.wait(pause, 0, 0, 50); // sleep 50 ms
  }
}
