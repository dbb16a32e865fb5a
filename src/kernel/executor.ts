/**
 * The cell executor of the lab kernel: tslab's own TypeScript converter and
 * executor, observed through the `console` object tslab reports to, so that a
 * cell's outcome comes back as data (its last value, or the error with its
 * diagnostics) instead of as text on stderr.
 *
 * Reference: tslab 1.0.22 `dist/executor.js` (`createExecutor(rootDir, convs, console)`):
 * it calls `console.error(diagnosticFormat, file, line, column, message)` for
 * each compile diagnostic, `console.error(thrown)` for a runtime error, and
 * `console.log(value)` for the value of the cell's last expression.
 */
import { compileError, runtimeError, type CompileDiagnostic, type ErrorContent } from "./traceback";
import { tslabConverter, tslabExecutor, tslabInspect } from "./tslab_internals";

/** What happened when a cell ran. */
export type CellOutcome =
  | { status: "ok"; /** The last expression's value; undefined when there is none. */ value: unknown; hasValue: boolean }
  | { status: "error"; error: ErrorContent };

interface TslabConverter {
  convert(prevDecl: string, src: string): { output?: string; [key: string]: unknown };
  close(): void;
  [key: string]: any;
}

interface TslabExecutor {
  execute(src: string): Promise<boolean>;
  inspect(src: string, position: number): unknown;
  complete(src: string, position: number): { start: number; end: number; candidates: string[] };
  interrupt(): void;
  close(): void;
}

/** Options for {@link LabExecutor}. */
export interface LabExecutorArgs {
  /** Where cells resolve imports from: the notebook's folder. Default: `process.cwd()`. */
  rootDir?: string;
  /** Prefix stripped from paths in tracebacks. Default: the project root. */
  projectRoot: string;
}

/** Runs cells one at a time and reports each one's outcome. */
export class LabExecutor {
  private readonly executor: TslabExecutor;
  private readonly projectRoot: string;
  private lastCompiled: string | undefined;
  private diagnostics: CompileDiagnostic[] = [];
  private thrown: { value: unknown } | undefined;
  private lastValue: { value: unknown } | undefined;
  private readonly converters: { node: TslabConverter; browser: TslabConverter; close(): void };

  constructor(args: LabExecutorArgs) {
    this.projectRoot = args.projectRoot;
    // Deep imports (src/kernel/tslab_internals.ts): tslab's public entry does not export these, and
    // this is how its own main.js builds a kernel.
    const { createConverter } = tslabConverter();
    const { createExecutor } = tslabExecutor();
    let node: TslabConverter | undefined;
    let browser: TslabConverter | undefined;
    const observe = (converter: TslabConverter): TslabConverter => {
      const convert = converter.convert.bind(converter);
      converter.convert = (prevDecl: string, src: string) => {
        const result = convert(prevDecl, src);
        this.lastCompiled = result.output;
        return result;
      };
      return converter;
    };
    this.converters = {
      get node() {
        return (node ??= observe(createConverter({ isJS: false, isBrowser: false })));
      },
      get browser() {
        return (browser ??= createConverter({ isJS: false, isBrowser: true }));
      },
      close() {
        node?.close();
        browser?.close();
      },
    };
    void this.converters.node; // warm the compiler (several hundred ms) before the first cell
    const observer = {
      log: (value: unknown) => {
        this.lastValue = { value };
      },
      error: (first: unknown, ...rest: unknown[]) => {
        if (typeof first === "string" && first.startsWith("%s%d:%d") && rest.length === 4) {
          const [fileName, line, column, message] = rest as [string, number, number, string];
          this.diagnostics.push({
            fileName: fileName ? String(fileName).trim() : undefined,
            line,
            column,
            message: String(message),
          });
        } else if (this.thrown === undefined) {
          this.thrown = { value: first };
        }
      },
    };
    this.executor = createExecutor(args.rootDir ?? process.cwd(), this.converters, observer);
  }

  /** Compiles and runs one cell. Never throws: errors come back as the outcome. */
  async execute(source: string, executionCount: number): Promise<CellOutcome> {
    this.lastCompiled = undefined;
    this.diagnostics = [];
    this.thrown = undefined;
    this.lastValue = undefined;
    let ok: boolean;
    try {
      ok = await this.executor.execute(source);
    } catch (error) {
      ok = false;
      if (this.thrown === undefined) this.thrown = { value: error };
    }
    if (ok) {
      const last = this.lastValue as { value: unknown } | undefined;
      return { status: "ok", value: last?.value, hasValue: last !== undefined };
    }
    if (this.diagnostics.length > 0) {
      return { status: "error", error: compileError(this.diagnostics, source, executionCount) };
    }
    const thrown = (this.thrown as { value: unknown } | undefined)?.value;
    if (thrown instanceof Error && thrown.message === "Interrupted asynchronously") {
      return {
        status: "error",
        error: {
          ename: "KeyboardInterrupt",
          evalue: "the cell was interrupted",
          traceback: ["KeyboardInterrupt: the cell was interrupted"],
        },
      };
    }
    return {
      status: "error",
      error: runtimeError(thrown, {
        cellSource: source,
        compiled: this.lastCompiled,
        executionCount,
        projectRoot: this.projectRoot,
      }),
    };
  }

  /** Completion candidates at `cursor` in `code`. */
  complete(code: string, cursor: number) {
    return this.executor.complete(code, cursor);
  }

  /** tslab's quick info at `cursor`, or undefined. */
  inspect(code: string, cursor: number): unknown {
    return this.executor.inspect(code, cursor);
  }

  /** Stops the running cell at its next await (and a synchronous loop on SIGINT). */
  interrupt(): void {
    this.executor.interrupt();
  }

  close(): void {
    this.executor.close();
  }
}

/** Whether `code` is a complete cell (tslab's check), with the indent to continue with. */
export function isCompleteCode(code: string): { completed: boolean; indent?: string } {
  return tslabConverter().isCompleteCode(code);
}

/** Formats tslab's quick info as plain text. */
export function printQuickInfo(info: unknown): string {
  return tslabInspect().printQuickInfo(info);
}
