/**
 * `mllm-labs run`: executes notebooks headless on the lab kernel, cell by
 * cell, and writes them back executed, in valid nbformat 4.
 *
 * - Stops at the first failing cell unless it is tagged `raises-exception`;
 *   cells tagged `skip-execution` are left as they are.
 * - A per-cell timeout interrupts the cell; a kernel that dies or stops
 *   answering gives a message naming the cell. The partial notebook is written
 *   in every case, atomically.
 */
import * as path from "path";
import { KernelClient, KernelError } from "./kernel_client";
import { cellTags, joinSource, readNotebook, writeNotebook, type CodeCell, type Notebook } from "./notebook";
import { OutputRecorder } from "./outputs";
import { kernelArgv, KERNEL_DISPLAY_NAME, KERNEL_NAME } from "../kernel/kernelspec";
import { projectRoot } from "../util/project_root";

/** Options for {@link runNotebook}. */
export interface RunArgs {
  /** Folder for the executed notebook (same file name). Default: `out/`. */
  outDir?: string;
  /** Overwrite the input notebook. Default: false. */
  inPlace?: boolean;
  /** Seconds each cell may run. Default: 600. */
  timeout?: number;
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
}


function firstLine(source: string): string {
  const line = source.split("\n").find((l) => l.trim() !== "") ?? "";
  return line.length > 60 ? line.slice(0, 57) + "..." : line;
}

export function outputPath(input: string, args: Pick<RunArgs, "outDir" | "inPlace">): string {
  if (args.inPlace) return input;
  return path.join(args.outDir ?? "out", path.basename(input));
}

/** Runs one notebook. Never throws for a failing cell: see `RunResult.ok`. */
export async function runNotebook(input: string, args: RunArgs = {}): Promise<RunResult> {
  const log = args.log ?? (() => undefined);
  const started = Date.now();
  const notebook: Notebook = readNotebook(input);
  const output = outputPath(input, args);
  const name = path.basename(input);
  const codeCells = notebook.cells.filter((cell): cell is CodeCell => cell.cell_type === "code");
  const result: RunResult = { input, output, ok: true, cellsRun: 0, codeCells: codeCells.length, seconds: 0 };
  notebook.metadata.kernelspec = { name: KERNEL_NAME, display_name: KERNEL_DISPLAY_NAME, language: "typescript" };

  const client = await KernelClient.start({
    argv: args.kernelArgv ?? kernelArgv(projectRoot()),
    cwd: path.dirname(path.resolve(input)),
    env: args.env,
  });
  const info = await client.kernelInfo();
  notebook.metadata.language_info = info.language_info;
  const recorder = new OutputRecorder();
  const timeout = args.timeout ?? 600;
  try {
    let index = 0;
    for (const cell of codeCells) {
      index++;
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
        log(`${name}: cell ${index}/${codeCells.length} done in ${((Date.now() - cellStart) / 1000).toFixed(1)} s (total ${elapsed} s)`);
        if (reply.content.status === "error" && !tags.includes("raises-exception")) {
          result.ok = false;
          result.failure = `cell ${index} (In [${cell.execution_count}]) failed: ${reply.content.ename}: ${reply.content.evalue}`;
          break;
        }
        if (reply.content.status !== "error" && tags.includes("raises-exception")) {
          result.ok = false;
          result.failure = `cell ${index} (In [${cell.execution_count}]) is tagged raises-exception but raised nothing`;
          break;
        }
      } catch (error) {
        result.ok = false;
        if (error instanceof KernelError && error.kind === "timeout") {
          cell.outputs.push({ output_type: "error", ename: "CellTimeoutError", evalue: error.message, traceback: [`CellTimeoutError: ${error.message}`] });
          result.failure = `cell ${index} timed out: ${error.message}`;
        } else if (error instanceof KernelError && error.kind === "died") {
          const tail = client.kernelStderr.trim().split("\n").slice(-8).join("\n");
          cell.outputs.push({ output_type: "error", ename: "DeadKernelError", evalue: error.message, traceback: [`DeadKernelError: ${error.message}`, ...(tail ? tail.split("\n") : [])] });
          result.failure = `the kernel died while running cell ${index} (${firstLine(source)}): ${error.message}${tail ? `\nkernel stderr:\n${tail}` : ""}`;
        } else {
          result.failure = `cell ${index}: ${(error as Error).message}`;
        }
        break;
      }
    }
  } finally {
    result.seconds = (Date.now() - started) / 1000;
    writeNotebook(output, notebook);
    await client.shutdown().catch(() => undefined);
  }
  return result;
}
