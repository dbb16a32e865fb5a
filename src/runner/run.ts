/**
 * `mllm-labs run`: executes notebooks headless on the lab kernel, cell by
 * cell, and writes them back executed, in valid nbformat 4.
 *
 * - Stops at the first failing cell unless it is tagged `raises-exception`;
 *   cells tagged `skip-execution` are left as they are.
 * - A per-cell timeout interrupts the cell; a kernel that dies or stops
 *   answering gives a message naming the cell. The partial notebook is written
 *   in every case, atomically; cells that did not run have no outputs and no
 *   execution count, so a partial notebook never looks executed.
 * - Bad arguments (an unwritable `--out`, a notebook for another language,
 *   two inputs with the same file name, a timeout no timer can hold) are
 *   refused before any cell runs.
 * - The kernel never outlives the run: on SIGINT/SIGTERM the cell is
 *   interrupted, the notebook written and the kernel's whole process group
 *   killed; a runner killed with SIGKILL leaves a kernel that notices its
 *   parent is gone and exits (`MLLM_LABS_PARENT_PID`, see kernel/parent_watch).
 */
import * as fs from "fs";
import * as path from "path";
import { KernelClient, KernelError } from "./kernel_client";
import { cellTags, joinSource, PARTIAL_RUN_KEY, readNotebook, writeNotebook, type CodeCell, type Notebook } from "./notebook";
export { PARTIAL_RUN_KEY } from "./notebook";
import { OutputRecorder } from "./outputs";
import { kernelArgv, KERNEL_DISPLAY_NAME, KERNEL_NAME } from "../kernel/kernelspec";
import { projectRoot } from "../util/project_root";

/** Options for {@link runNotebook}. */
export interface RunArgs {
  /** Folder for the executed notebook (same file name). Default: `out/`. */
  outDir?: string;
  /** Overwrite the input notebook. Default: false. */
  inPlace?: boolean;
  /** Seconds each cell may run, at most {@link MAX_TIMEOUT_SECONDS}. Default: 600. */
  timeout?: number;
  /**
   * With `inPlace`, what a failing run does to the input: false (default) keeps
   * the original and writes the partial notebook next to it as
   * `NAME.partial.ipynb`; true overwrites the input with the partial notebook.
   */
  overwriteOnFailure?: boolean;
  /** The kernel command (with `{connection_file}`). Default: the lab kernel of this package. */
  kernelArgv?: string[];
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
  /** Progress lines (cell k of n, elapsed). Default: none. */
  log?: (line: string) => void;
}

/** What happened to one notebook. */
export interface RunResult {
  input: string;
  output: string;
  ok: boolean;
  /** Code cells run (skipped ones not counted). */
  cellsRun: number;
  codeCells: number;
  seconds: number;
  /** Why the run stopped early, naming the cell. */
  failure?: string;
  /** The signal (SIGINT, SIGTERM) that stopped the run, if one did. */
  signal?: NodeJS.Signals;
}

/** The longest per-cell timeout a Node timer can hold (2^31 − 1 ms, about 24.8 days), in whole seconds. */
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** Kernel languages the lab kernel runs (TypeScript, and JavaScript as a subset). */
const KERNEL_LANGUAGES = ["typescript", "javascript"];

/** Raised for arguments refused before any cell runs. */
export class RunArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunArgumentError";
  }
}

/** A notebook read and checked, with where it will be written. */
interface PreparedRun {
  input: string;
  output: string;
  notebook: Notebook;
}

function firstLine(source: string): string {
  const line = source.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 60 ? line.slice(0, 57) + "..." : line;
}

export function outputPath(input: string, args: Pick<RunArgs, "outDir" | "inPlace">): string {
  if (args.inPlace) return input;
  return path.join(args.outDir ?? "out", path.basename(input));
}

/** Where a failing `--in-place` run writes its partial notebook when the original is kept. */
export function partialPath(input: string): string {
  return path.join(path.dirname(input), `${path.basename(input, ".ipynb")}.partial.ipynb`);
}

/** Checks that files can be created in `dir` (creating it if needed), by writing and removing a probe file. */
function checkWritableFolder(dir: string, what: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new RunArgumentError(`${what} "${dir}" is a file, not a folder`);
  }
  const probe = path.join(dir, `.mllm-labs-probe-${process.pid}-${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, "");
  } catch (error) {
    throw new RunArgumentError(`${what} "${dir}" is not writable: ${(error as Error).message}`);
  }
  fs.rmSync(probe, { force: true });
}

/** The per-cell timeout, checked: a positive number of seconds a timer can hold. */
export function checkTimeout(timeout: number | undefined): number {
  const seconds = timeout ?? 600;
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new RunArgumentError(`--timeout must be a positive number of seconds, got ${JSON.stringify(seconds)}`);
  }
  if (seconds > MAX_TIMEOUT_SECONDS) {
    throw new RunArgumentError(
      `--timeout ${seconds} s is more than a timer can hold; the most is ${MAX_TIMEOUT_SECONDS} s (about 24.8 days)`,
    );
  }
  return seconds;
}

/**
 * Reads and checks every notebook and argument before any cell runs: the
 * notebooks are valid, for a language the lab kernel runs, their outputs
 * distinct and their folders writable.
 */
function prepareRuns(inputs: string[], args: RunArgs): PreparedRun[] {
  checkTimeout(args.timeout);
  if (inputs.length === 0) throw new RunArgumentError("no notebook to run");
  const prepared = inputs.map((input) => {
    const notebook = readNotebook(input);
    const language = notebook.metadata?.kernelspec?.language ?? notebook.metadata?.language_info?.name;
    if (typeof language === "string" && !KERNEL_LANGUAGES.includes(language.toLowerCase())) {
      const name = notebook.metadata?.kernelspec?.name;
      throw new RunArgumentError(
        `notebook "${input}" is for the kernel language "${language}"${name ? ` (kernelspec "${name}")` : ""}; the lab kernel runs ${KERNEL_LANGUAGES.join(" or ")}`,
      );
    }
    return { input, output: outputPath(input, args), notebook };
  });
  const seen = new Map<string, string>();
  for (const run of prepared) {
    const key = path.resolve(run.output);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new RunArgumentError(
        `"${earlier}" and "${run.input}" would both be written to "${run.output}"; run them with different --out folders`,
      );
    }
    seen.set(key, run.input);
  }
  for (const dir of new Set(prepared.map((run) => path.dirname(path.resolve(run.output))))) {
    checkWritableFolder(dir, args.inPlace ? "the notebook's folder" : "--out");
  }
  return prepared;
}

/** Runs one notebook. Never throws for a failing cell: see `RunResult.ok`. Bad arguments throw before any cell runs. */
export async function runNotebook(input: string, args: RunArgs = {}): Promise<RunResult> {
  const [prepared] = prepareRuns([input], args);
  return runPrepared(prepared, args);
}

/**
 * Runs notebooks in order, stopping at the first that fails. Every notebook
 * and argument is checked before the first cell runs.
 */
export async function runNotebooks(
  inputs: string[],
  args: RunArgs = {},
  onResult?: (result: RunResult) => void,
): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const prepared of prepareRuns(inputs, args)) {
    const result = await runPrepared(prepared, args);
    results.push(result);
    onResult?.(result);
    if (!result.ok) break;
  }
  return results;
}

async function runPrepared({ input, output, notebook }: PreparedRun, args: RunArgs): Promise<RunResult> {
  const log = args.log ?? (() => undefined);
  const started = Date.now();
  const name = path.basename(input);
  const codeCells = notebook.cells.filter((cell): cell is CodeCell => cell.cell_type === "code");
  const result: RunResult = { input, output, ok: true, cellsRun: 0, codeCells: codeCells.length, seconds: 0 };
  notebook.metadata.kernelspec = { name: KERNEL_NAME, display_name: KERNEL_DISPLAY_NAME, language: "typescript" };
  delete notebook.metadata[PARTIAL_RUN_KEY];
  // Outputs of an earlier run must not pass for this run's: every cell that will run starts empty.
  for (const cell of codeCells) {
    if (cellTags(cell).includes("skip-execution")) continue;
    cell.outputs = [];
    cell.execution_count = null;
  }
  const timeout = checkTimeout(args.timeout);

  // Ctrl-C or SIGTERM: interrupt the cell, write what ran, shut the kernel down.
  // A second signal (or a kernel that ignores the interrupt for 5 s) kills its process group.
  let client: KernelClient | undefined;
  let escalation: NodeJS.Timeout | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (result.signal) {
      client?.killProcessGroup();
      return;
    }
    result.signal = signal;
    log(`${name}: ${signal}: interrupting the kernel, writing the partial notebook`);
    void client?.interrupt();
    escalation = setTimeout(() => client?.killProcessGroup(), 5000);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    client = await KernelClient.start({
      argv: args.kernelArgv ?? kernelArgv(projectRoot()),
      cwd: path.dirname(path.resolve(input)),
      env: args.env,
    });
    const info = await client.kernelInfo();
    notebook.metadata.language_info = info.language_info;
    await runCells(client, codeCells, name, timeout, result, log, started);
  } catch (error) {
    result.ok = false;
    result.failure ??= (error as Error).message;
  } finally {
    if (result.signal) {
      result.ok = false;
      result.failure = `stopped by ${result.signal} after ${result.cellsRun} of ${codeCells.length} code cells${result.failure ? ` (${result.failure})` : ""}`;
    }
    result.seconds = (Date.now() - started) / 1000;
    if (!result.ok)
      notebook.metadata[PARTIAL_RUN_KEY] = { cells_run: result.cellsRun, code_cells: codeCells.length, failure: result.failure };
    try {
      if (!result.ok && args.inPlace && !args.overwriteOnFailure) {
        result.output = partialPath(input);
        log(`${name}: the run failed; "${input}" is kept as it was, the partial notebook is "${result.output}"`);
      }
      writeNotebook(result.output, notebook);
    } finally {
      await client?.shutdown().catch(() => undefined);
      if (escalation) clearTimeout(escalation);
      process.removeListener("SIGINT", onSignal);
      process.removeListener("SIGTERM", onSignal);
    }
  }
  return result;
}

async function runCells(
  client: KernelClient,
  codeCells: CodeCell[],
  name: string,
  timeout: number,
  result: RunResult,
  log: (line: string) => void,
  started: number,
): Promise<void> {
  const recorder = new OutputRecorder();
  let index = 0;
  for (const cell of codeCells) {
    index++;
    if (result.signal) return;
    const source = joinSource(cell.source);
    const tags = cellTags(cell);
    if (tags.includes("skip-execution")) {
      log(`${name}: cell ${index}/${codeCells.length} skipped (skip-execution)`);
      continue;
    }
    const cellStart = Date.now();
    log(`${name}: cell ${index}/${codeCells.length} ${firstLine(source)}`);
    cell.outputs = recorder.startCell();
    cell.execution_count = null;
    if (source.trim() === "") continue;
    try {
      const { reply } = await client.execute(source, {
        timeout,
        onMessage: (message) => {
          recorder.handle(message);
          cell.outputs = recorder.current;
        },
      });
      cell.outputs = recorder.current;
      cell.execution_count = reply.content.execution_count ?? null;
      result.cellsRun++;
      const elapsed = ((Date.now() - started) / 1000).toFixed(1);
      log(
        `${name}: cell ${index}/${codeCells.length} done in ${((Date.now() - cellStart) / 1000).toFixed(1)} s (total ${elapsed} s)`,
      );
      if (result.signal) return;
      if (reply.content.status === "error" && !tags.includes("raises-exception")) {
        result.ok = false;
        result.failure = `cell ${index} (In [${cell.execution_count}]) failed: ${reply.content.ename}: ${reply.content.evalue}`;
        return;
      }
      if (reply.content.status !== "error" && tags.includes("raises-exception")) {
        result.ok = false;
        result.failure = `cell ${index} (In [${cell.execution_count}]) is tagged raises-exception but raised nothing`;
        return;
      }
    } catch (error) {
      result.ok = false;
      if (error instanceof KernelError && error.kind === "timeout") {
        cell.outputs.push({
          output_type: "error",
          ename: "CellTimeoutError",
          evalue: error.message,
          traceback: [`CellTimeoutError: ${error.message}`],
        });
        result.failure = `cell ${index} timed out: ${error.message}`;
      } else if (error instanceof KernelError && error.kind === "died") {
        const tail = client.kernelStderr.trim().split("\n").slice(-8).join("\n");
        cell.outputs.push({
          output_type: "error",
          ename: "DeadKernelError",
          evalue: error.message,
          traceback: [`DeadKernelError: ${error.message}`, ...(tail ? tail.split("\n") : [])],
        });
        result.failure = `the kernel died while running cell ${index} (${firstLine(source)}): ${error.message}${tail ? `\nkernel stderr:\n${tail}` : ""}`;
      } else {
        result.failure = `cell ${index}: ${(error as Error).message}`;
      }
      return;
    }
  }
}
