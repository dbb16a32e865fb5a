/**
 * Turning what a cell threw into a Jupyter `error` message: ename, evalue and a
 * traceback that points at the cell's own line and names no absolute path of
 * this machine.
 *
 * tslab compiles a cell from TypeScript to JavaScript without a source map, so
 * a stack frame gives a line of the compiled JavaScript. `mapCompiledLine`
 * finds the cell line it came from by aligning the two texts in order.
 */

/** The three fields of a Jupyter error. */
export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** One TypeScript diagnostic as tslab reports it (1-based line and column). */
export interface CompileDiagnostic {
  line: number;
  column: number;
  message: string;
  /** Set when the diagnostic is in another file than the cell. */
  fileName?: string;
}

const IDENTIFIER = /[A-Za-z_$][\w$]*|\d+(?:\.\d+)?|"[^"]*"|'[^']*'|`[^`]*`/g;
/** Words the TypeScript emitter adds or removes; they say nothing about which line is which. */
const NOISE = new Set(["const", "let", "var", "exports", "export", "void", "await", "async", "function", "return"]);

function tokens(line: string): string[] {
  return (line.match(IDENTIFIER) ?? []).filter((token) => !NOISE.has(token));
}

function similarity(a: string[], b: string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const token of b) counts.set(token, (counts.get(token) ?? 0) + 1);
  let shared = 0;
  for (const token of a) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      shared++;
      counts.set(token, left - 1);
    }
  }
  return (2 * shared) / (a.length + b.length);
}

/**
 * Maps a 1-based line of tslab's compiled JavaScript to the 1-based line of
 * the TypeScript cell it came from, or undefined when no cell line resembles
 * it (a line the compiler made up, such as an `exports.x = x` after a declaration).
 *
 * The compiler keeps statements in order, so the lines are aligned by a
 * monotone alignment maximising token similarity (Needleman–Wunsch with free gaps).
 */
export function mapCompiledLine(cellSource: string, compiled: string, compiledLine: number): number | undefined {
  const cell = cellSource.split("\n").map(tokens);
  const js = compiled.split("\n").map(tokens);
  const n = js.length;
  const m = cell.length;
  // score[i][j]: best total similarity aligning js[0..i) with cell[0..j).
  const score = Array.from({ length: n + 1 }, () => new Float64Array(m + 1));
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const match = score[i - 1][j - 1] + similarity(js[i - 1], cell[j - 1]);
      score[i][j] = Math.max(match, score[i - 1][j], score[i][j - 1]);
    }
  }
  // Walk back to find which cell line the wanted js line was matched with.
  let i = n;
  let j = m;
  while (i > 0 && j > 0) {
    const sim = similarity(js[i - 1], cell[j - 1]);
    if (sim > 0 && Math.abs(score[i][j] - (score[i - 1][j - 1] + sim)) < 1e-12) {
      if (i === compiledLine) return sim >= 0.3 ? j : undefined;
      i--;
      j--;
    } else if (score[i][j] === score[i - 1][j]) {
      if (i === compiledLine) return undefined;
      i--;
    } else {
      j--;
    }
  }
  return undefined;
}

/**
 * Replaces absolute paths in `text`: the project root by nothing (so paths
 * read `node_modules/...`, `dist/src/...`), then any other absolute path by
 * its last two segments behind `…/`.
 */
export function stripMachinePaths(text: string, projectRoot: string): string {
  let out = text;
  if (projectRoot && projectRoot !== "/") {
    const root = projectRoot.endsWith("/") ? projectRoot : projectRoot + "/";
    out = out.split(root).join("");
    out = out.split("file://").join("");
  }
  return out.replace(/(?<![\w.])\/(?:[\w.@+-]+\/)+([\w.@+-]+\/[\w.@+-]+)/g, "…/$1");
}

/** Name and message of anything a cell can throw. */
function describeThrown(thrown: unknown): { name: string; message: string; stack?: string } {
  if (thrown instanceof Error || (typeof thrown === "object" && thrown !== null && "message" in thrown)) {
    const error = thrown as Error;
    return { name: error.name || "Error", message: String(error.message), stack: error.stack };
  }
  return { name: "Thrown", message: typeof thrown === "string" ? thrown : (JSON.stringify(thrown) ?? String(thrown)) };
}

/** Options for {@link runtimeError}. */
export interface RuntimeErrorContext {
  /** The cell's TypeScript source. */
  cellSource: string;
  /** tslab's compiled JavaScript for the cell (for mapping lines), if known. */
  compiled?: string;
  /** The execution count shown as `In [n]`. */
  executionCount: number;
  /** Prefix stripped from paths in the traceback. */
  projectRoot: string;
}

const VM_FRAME = /\(?evalmachine\.<anonymous>:(\d+):(\d+)\)?/;

/**
 * The error content for a value thrown while a cell ran. The traceback starts
 * with the cell line that threw (with a caret line), then the stack frames
 * outside the kernel's machinery, paths stripped.
 */
export function runtimeError(thrown: unknown, context: RuntimeErrorContext): ErrorContent {
  const { name, message, stack } = describeThrown(thrown);
  const cellLines = context.cellSource.split("\n");
  const traceback: string[] = [];
  const frames = (stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  let cellLine: number | undefined;
  const kept: string[] = [];
  for (const frame of frames) {
    const vm = VM_FRAME.exec(frame);
    if (vm) {
      const line = context.compiled ? mapCompiledLine(context.cellSource, context.compiled, Number(vm[1])) : undefined;
      if (cellLine === undefined && line !== undefined) cellLine = line;
      if (line === undefined) continue; // compiler-made wrapper lines
      const where = `cell line ${line}`;
      kept.push(frame.replace(VM_FRAME, `(${where})`).replace(/^\s+at /, "    at "));
      continue;
    }
    // Frames of the kernel itself and of Node's internals teach nothing.
    if (
      /node:internal|node:vm|sigintHandlersWrap|tslab[\\/]dist[\\/]|dist[\\/]src[\\/]kernel[\\/]|\(<anonymous>\)|at new Promise/.test(
        frame,
      )
    )
      continue;
    kept.push(stripMachinePaths(frame, context.projectRoot).replace(/^\s+at /, "    at "));
  }
  const evalue = stripMachinePaths(message, context.projectRoot);
  traceback.push(`${name}: ${evalue}`);
  if (cellLine !== undefined) {
    const text = cellLines[cellLine - 1] ?? "";
    traceback.push(`  In [${context.executionCount}], line ${cellLine}:`);
    traceback.push(`    ${text.trim()}`);
  }
  traceback.push(...kept);
  return { ename: name, evalue, traceback };
}

/** The error content for a cell that did not compile. */
export function compileError(diagnostics: CompileDiagnostic[], cellSource: string, executionCount: number): ErrorContent {
  const cellLines = cellSource.split("\n");
  const traceback: string[] = [];
  for (const d of diagnostics) {
    const where = d.fileName ? `${d.fileName} ${d.line}:${d.column}` : `In [${executionCount}], line ${d.line}:${d.column}`;
    traceback.push(`${where} - ${d.message}`);
    if (!d.fileName) {
      traceback.push(`    ${cellLines[d.line - 1] ?? ""}`);
      traceback.push(`    ${" ".repeat(Math.max(0, d.column - 1))}^`);
    }
  }
  const first = diagnostics[0];
  return {
    ename: "CompileError",
    evalue: first ? `line ${first.line}:${first.column} - ${first.message}` : "the cell did not compile",
    traceback,
  };
}
