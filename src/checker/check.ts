/**
 * `mllm-labs check <executed.ipynb> <reference.ipynb>`: compares an executed
 * notebook with its reference cell by cell, as nbval does, and reports every
 * difference.
 *
 * Per output type: stream and text outputs after {@link sanitize} (paths,
 * dates and the tfjs banner everywhere; durations and memory sizes only where
 * the cell's tags say so), with the numbers inside compared within a
 * tolerance; images (PNG, JPEG, GIF, WebP) by perceptual distance; JSON
 * outputs (application/json, *+json such as Plotly's) structurally; SVG and
 * HTML as sanitized text; errors by name and message.
 *
 * Cell tags (in the reference notebook, or the executed one):
 * - `check-ignore-output` (or nbval's `nbval-ignore-output`): outputs not compared;
 * - `check-ignore-stderr`: stderr streams not compared;
 * - `check-rtol=X`, `check-atol=X`: looser or tighter number tolerance;
 * - `check-approx-integers`: integers within the tolerance too (by default
 *   they compare exactly: token ids and counts must not pass by being close);
 * - `check-image-threshold=X`: perceptual distance allowed for images;
 * - `check-sanitize-time`: durations, rates and clock times (`12.3 s`,
 *   `3.1 steps/s`, `ETA 00:12`) become `<time>` before comparing; elsewhere a
 *   changed duration is a difference like any number (within the cell's
 *   tolerance), so a result printed with a unit is never hidden as a "time";
 * - `check-sanitize-bytes`: memory sizes (`12.5 MB`, `2048 bytes`) become
 *   `<bytes>`; elsewhere a changed size is a difference like any number;
 * - `skip-execution`: the cell is not compared.
 */
import { ALWAYS_SANITIZERS, sanitize, SANITIZE_BYTES_TAG, SANITIZE_TIME_TAG, sanitizersFor, type Sanitizer } from "./sanitize";
import { compareEncodedImages, compareJson, compareText, DEFAULT_TOLERANCE, type Difference, type Tolerance } from "./compare";
import {
  cellTags,
  joinSource,
  PARTIAL_RUN_KEY,
  readNotebook,
  type CodeCell,
  type Notebook,
  type Output,
} from "../runner/notebook";

/** One difference in a notebook, located. */
export interface NotebookDifference {
  /** 1-based index among code cells. */
  cell: number;
  /** First line of the cell's source, to recognise it. */
  cellHead: string;
  /** Which output, e.g. "output 2 (stream stdout)". */
  output: string;
  difference: Difference;
}

/** Options for {@link checkNotebooks}. */
export interface CheckArgs {
  tolerance?: Tolerance;
  imageThreshold?: number;
}

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/** Mime types that a front end adds and that are not the content (widgets' state, plain fallbacks when richer ones exist). */
const SKIPPED_TYPES = new Set(["application/vnd.jupyter.widget-view+json"]);

function tagValue(tags: string[], name: string): number | undefined {
  const tag = tags.find((t) => t.startsWith(`${name}=`));
  if (!tag) return undefined;
  const value = Number(tag.slice(name.length + 1));
  if (!Number.isFinite(value) || value < 0) throw new Error(`cell tag "${tag}" needs a non-negative number`);
  return value;
}

function text(value: unknown): string {
  return Array.isArray(value) ? value.join("") : typeof value === "string" ? value : JSON.stringify(value);
}

/** Streams of one name merged, consecutive; stderr dropped when ignored. */
function normalizeOutputs(outputs: Output[], ignoreStderr: boolean): Output[] {
  const merged: Output[] = [];
  for (const output of outputs) {
    if (output.output_type === "stream") {
      if (ignoreStderr && output.name === "stderr") continue;
      const last = merged[merged.length - 1];
      if (last && last.output_type === "stream" && last.name === output.name) {
        merged[merged.length - 1] = { ...last, text: text(last.text) + text(output.text) };
        continue;
      }
      merged.push({ ...output, text: text(output.text) });
      continue;
    }
    merged.push(output);
  }
  // A stream that is empty once sanitized (only a tfjs banner) is no output.
  return merged.filter((o) => o.output_type !== "stream" || sanitize(text(o.text), ALWAYS_SANITIZERS).trim() !== "");
}

function describe(output: Output): string {
  return output.output_type === "stream" ? `stream ${output.name}` : output.output_type;
}

/** How one cell's outputs are compared (from its tags and the arguments). */
interface CellRules {
  tolerance: Tolerance;
  imageThreshold: number;
  /** What is sanitized in its text: {@link sanitizersFor} its tags. */
  sanitizers: readonly Sanitizer[];
}

async function compareOutput(
  got: Output,
  want: Output,
  { tolerance, imageThreshold, sanitizers }: CellRules,
): Promise<Difference[]> {
  const clean = (value: string) => sanitize(value, sanitizers);
  if (got.output_type !== want.output_type) {
    return [{ where: "type", message: `got ${describe(got)}, want ${describe(want)}` }];
  }
  if (got.output_type === "stream" && want.output_type === "stream") {
    if (got.name !== want.name) return [{ where: "stream", message: `got ${got.name}, want ${want.name}` }];
    return compareText(clean(text(got.text)), clean(text(want.text)), tolerance);
  }
  if (got.output_type === "error" && want.output_type === "error") {
    if (got.ename !== want.ename) return [{ where: "ename", message: `got ${got.ename}, want ${want.ename}` }];
    return compareText(clean(got.evalue), clean(want.evalue), tolerance).map((d) => ({ ...d, where: `evalue ${d.where}` }));
  }
  if ("data" in got && "data" in want) {
    const differences: Difference[] = [];
    const gotTypes = Object.keys(got.data)
      .filter((t) => !SKIPPED_TYPES.has(t))
      .sort();
    const wantTypes = Object.keys(want.data)
      .filter((t) => !SKIPPED_TYPES.has(t))
      .sort();
    if (gotTypes.join() !== wantTypes.join()) {
      differences.push({ where: "mime types", message: `got [${gotTypes.join(", ")}], want [${wantTypes.join(", ")}]` });
    }
    for (const mime of wantTypes.filter((t) => gotTypes.includes(t))) {
      const a = got.data[mime];
      const b = want.data[mime];
      let found: Difference[];
      if (IMAGE_TYPES.includes(mime))
        found = await compareEncodedImages(text(a).replace(/\s/g, ""), text(b).replace(/\s/g, ""), { threshold: imageThreshold });
      else if (mime === "application/json" || mime.endsWith("+json")) found = compareJson(a, b, tolerance);
      else found = compareText(clean(text(a)), clean(text(b)), tolerance);
      differences.push(...found.map((d) => ({ ...d, where: `${mime} ${d.where}` })));
    }
    return differences;
  }
  return [];
}

/**
 * For an output that differs: when the cell's missing sanitize tags would
 * make it match (only durations or sizes differ), a note saying which tag to
 * add if they may differ between honest runs; "" otherwise.
 */
async function sanitizeTagHint(got: Output, want: Output, rules: CellRules, tags: string[]): Promise<string> {
  const missing = [SANITIZE_TIME_TAG, SANITIZE_BYTES_TAG].filter((tag) => !tags.includes(tag));
  const kinds: Record<string, string> = { [SANITIZE_TIME_TAG]: "durations", [SANITIZE_BYTES_TAG]: "memory sizes" };
  for (const added of [...missing.map((tag) => [tag]), ...(missing.length > 1 ? [missing] : [])]) {
    const sanitizers = sanitizersFor([...tags, ...added]);
    if ((await compareOutput(got, want, { ...rules, sanitizers })).length === 0) {
      return ` (only ${added.map((tag) => kinds[tag]).join(" and ")} differ: tag the cell ${added.join(" and ")} if they may differ between honest runs)`;
    }
  }
  return "";
}

function codeCells(notebook: Notebook): CodeCell[] {
  return notebook.cells.filter((cell): cell is CodeCell => cell.cell_type === "code");
}

/** Compares two notebooks already read. */
export async function compareNotebooks(
  executed: Notebook,
  reference: Notebook,
  args: CheckArgs = {},
): Promise<NotebookDifference[]> {
  const got = codeCells(executed);
  const want = codeCells(reference);
  const differences: NotebookDifference[] = [];
  const partialRun = executed.metadata?.[PARTIAL_RUN_KEY] as { failure?: string } | undefined;
  const partial = partialRun ? `the run stopped early: ${partialRun.failure ?? "unknown reason"}` : "";
  if (got.length !== want.length) {
    differences.push({
      cell: 0,
      cellHead: "",
      output: "notebook",
      difference: { where: "code cells", message: `got ${got.length} code cells, want ${want.length}` },
    });
  }
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    const tags = [...new Set([...cellTags(want[i]), ...cellTags(got[i])])];
    const head = joinSource(want[i].source).split("\n")[0].slice(0, 60);
    const at = (output: string, difference: Difference) => differences.push({ cell: i + 1, cellHead: head, output, difference });
    if (joinSource(got[i].source) !== joinSource(want[i].source)) {
      at("source", { where: "source", message: "the cell's source differs from the reference" });
    }
    if (tags.includes("skip-execution")) continue;
    // A cell the run never reached is a difference even where outputs are ignored.
    if (
      got[i].execution_count === null &&
      got[i].outputs.length === 0 &&
      (want[i].execution_count !== null || want[i].outputs.length > 0) &&
      joinSource(want[i].source).trim() !== ""
    ) {
      at("execution", {
        where: "not run",
        message: `the cell did not run (no execution count, no outputs); the reference ran it${partial ? ` (${partial})` : ""}`,
      });
      continue;
    }
    if (tags.includes("check-ignore-output") || tags.includes("nbval-ignore-output")) continue;
    const tolerance: Tolerance = {
      rtol: tagValue(tags, "check-rtol") ?? args.tolerance?.rtol ?? DEFAULT_TOLERANCE.rtol,
      atol: tagValue(tags, "check-atol") ?? args.tolerance?.atol ?? DEFAULT_TOLERANCE.atol,
      approxIntegers: tags.includes("check-approx-integers") || args.tolerance?.approxIntegers === true,
    };
    const imageThreshold = tagValue(tags, "check-image-threshold") ?? args.imageThreshold ?? 0.02;
    const ignoreStderr = tags.includes("check-ignore-stderr");
    const a = normalizeOutputs(got[i].outputs, ignoreStderr);
    const b = normalizeOutputs(want[i].outputs, ignoreStderr);
    if (a.length !== b.length) {
      at("outputs", {
        where: "count",
        message: `got ${a.length} outputs [${a.map(describe).join(", ")}], want ${b.length} [${b.map(describe).join(", ")}]`,
      });
    }
    const rules: CellRules = { tolerance, imageThreshold, sanitizers: sanitizersFor(tags) };
    for (let k = 0; k < Math.min(a.length, b.length); k++) {
      const found = await compareOutput(a[k], b[k], rules);
      // Sanitizers cannot change an image: no hint to look for then.
      const textOnly = found.length > 0 && !found.some((d) => IMAGE_TYPES.some((type) => d.where.startsWith(type)));
      const hint = textOnly ? await sanitizeTagHint(a[k], b[k], rules, tags) : "";
      for (const difference of found) {
        at(`output ${k + 1} (${describe(b[k])})`, { ...difference, message: difference.message + hint });
      }
    }
  }
  return differences;
}

/** Reads and compares two notebook files. */
export async function checkNotebooks(
  executedFile: string,
  referenceFile: string,
  args: CheckArgs = {},
): Promise<NotebookDifference[]> {
  return compareNotebooks(readNotebook(executedFile), readNotebook(referenceFile), args);
}

/** Options for {@link formatReport}. */
export interface ReportArgs {
  /** Differences printed per cell; the rest are counted. Default 10. */
  maxPerCell?: number;
}

/**
 * The readable report: the first differences of each cell (then how many more),
 * and a summary line last (differences, cells, how many not shown).
 */
export function formatReport(
  differences: NotebookDifference[],
  executedFile: string,
  referenceFile: string,
  args: ReportArgs = {},
): string {
  if (differences.length === 0) return `${executedFile} matches ${referenceFile}\n`;
  const maxPerCell = args.maxPerCell ?? 10;
  const lines = [`${executedFile} differs from ${referenceFile}:`];
  const byCell = new Map<number, NotebookDifference[]>();
  for (const d of differences) byCell.set(d.cell, [...(byCell.get(d.cell) ?? []), d]);
  let hidden = 0;
  for (const [cellIndex, list] of byCell) {
    for (const d of list.slice(0, maxPerCell)) {
      const cell = cellIndex > 0 ? `cell ${cellIndex} (${d.cellHead})` : "notebook";
      lines.push(`  ${cell}, ${d.output}: ${d.difference.where}: ${d.difference.message}`);
    }
    if (list.length > maxPerCell) {
      hidden += list.length - maxPerCell;
      lines.push(
        `  cell ${cellIndex}: ... and ${list.length - maxPerCell} more difference${list.length - maxPerCell === 1 ? "" : "s"} in this cell`,
      );
    }
  }
  const cells = [...byCell.keys()].filter((cell) => cell > 0).length;
  lines.push(
    `${differences.length} difference${differences.length === 1 ? "" : "s"} in ${cells} cell${cells === 1 ? "" : "s"}${hidden > 0 ? ` (${hidden} not shown; at most ${maxPerCell} per cell)` : ""}`,
  );
  return lines.join("\n") + "\n";
}
