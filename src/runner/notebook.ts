/**
 * Notebooks in nbformat 4: types, reading with clear errors, validation
 * against the official JSON schema (nbformat 4.5, shipped in `schemas/`), and
 * atomic writing in Jupyter's own layout (1-space indent, trailing newline).
 *
 * Reference: https://nbformat.readthedocs.io/en/latest/format_description.html
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { projectRoot } from "../util/project_root";

export type MultilineString = string | string[];

export interface StreamOutput {
  output_type: "stream";
  name: "stdout" | "stderr";
  text: MultilineString;
}
export interface DisplayDataOutput {
  output_type: "display_data";
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}
export interface ExecuteResultOutput {
  output_type: "execute_result";
  execution_count: number | null;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}
export interface ErrorOutput {
  output_type: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}
export type Output = StreamOutput | DisplayDataOutput | ExecuteResultOutput | ErrorOutput;

export interface CellMetadata {
  tags?: string[];
  [key: string]: unknown;
}
export interface CodeCell {
  cell_type: "code";
  id?: string;
  source: MultilineString;
  metadata: CellMetadata;
  execution_count: number | null;
  outputs: Output[];
}
export interface MarkdownCell {
  cell_type: "markdown" | "raw";
  id?: string;
  source: MultilineString;
  metadata: CellMetadata;
  attachments?: Record<string, unknown>;
}
export type Cell = CodeCell | MarkdownCell;

export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: Record<string, any>;
  cells: Cell[];
}

/**
 * Notebook metadata key that marks a partial run: `{cells_run, code_cells,
 * failure}`, written by `mllm-labs run` when it stops early and removed by a
 * complete run.
 */
export const PARTIAL_RUN_KEY = "mllm_labs_partial_run";

/** Raised for a notebook file that cannot be read or is not valid nbformat 4. */
export class NotebookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotebookError";
  }
}

/** Joins a multiline string. */
export function joinSource(source: MultilineString): string {
  return Array.isArray(source) ? source.join("") : source;
}

/** Splits text the way Jupyter stores it: lines with their newlines kept. */
export function splitLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.length === 1 && lines[0] === "" ? [] : lines;
}

/** The cell's tags. */
export function cellTags(cell: Cell): string[] {
  return Array.isArray(cell.metadata?.tags) ? cell.metadata.tags : [];
}

type SchemaError = { instancePath: string; message?: string; params?: Record<string, unknown> };
type Validate = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

let schemaValidators: { notebook: Validate; definition: (name: string) => Validate } | undefined;

/** The nbformat 4.5 schema, compiled once: the whole notebook and each definition (code_cell, display_data, ...). */
function validators() {
  if (!schemaValidators) {
    const Ajv = require("ajv-draft-04");
    const schemaPath = path.join(projectRoot(), "schemas", "nbformat.v4.5.schema.json");
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addSchema(JSON.parse(fs.readFileSync(schemaPath, "utf8")), "nbformat");
    const cache = new Map<string, Validate>();
    schemaValidators = {
      notebook: ajv.getSchema("nbformat"),
      definition: (name: string) => {
        if (!cache.has(name)) cache.set(name, ajv.getSchema(`nbformat#/definitions/${name}`));
        return cache.get(name)!;
      },
    };
  }
  return schemaValidators!;
}

/** An instance path (`/outputs/0/data`) as a field name (`outputs[0].data`). */
function fieldName(instancePath: string): string {
  return instancePath
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((name, part) => (/^\d+$/.test(part) ? `${name}[${part}]` : name ? `${name}.${part}` : part), "");
}

/** The most specific schema error, in one phrase: `field "outputs[0].data": must be object`. */
function describeErrors(errors: SchemaError[] | null | undefined): string {
  const list = (errors ?? []).filter((e) => !/^must match (exactly one|a schema in anyOf)/.test(e.message ?? ""));
  const chosen = (list.length > 0 ? list : (errors ?? [])).reduce<SchemaError | undefined>(
    (best, e) => (!best || e.instancePath.length > best.instancePath.length ? e : best),
    undefined,
  );
  if (!chosen) return "does not match the schema";
  const extra = chosen.params?.additionalProperty ?? chosen.params?.missingProperty ?? chosen.params?.allowedValues;
  const field = fieldName(chosen.instancePath);
  return `${field ? `field "${field}"` : "the object"}: ${chosen.message}${extra !== undefined ? ` (${JSON.stringify(extra)})` : ""}`;
}

const OUTPUT_TYPES = ["execute_result", "display_data", "stream", "error"];

/** Why one output is not valid nbformat 4.5, in one phrase; undefined when it is valid. */
export function outputProblem(output: unknown): string | undefined {
  const type = (output as { output_type?: unknown } | null)?.output_type;
  if (typeof type !== "string" || !OUTPUT_TYPES.includes(type)) {
    return `output_type ${JSON.stringify(type)} is not one of ${OUTPUT_TYPES.join(", ")}`;
  }
  const validate = validators().definition(type);
  return validate(output) ? undefined : `${type} ${describeErrors(validate.errors)}`;
}

const CELL_TYPES: Record<string, string> = { code: "code_cell", markdown: "markdown_cell", raw: "raw_cell" };

/** Why one cell is not valid, in one phrase naming the field; undefined when it is valid. */
function cellProblem(cell: any): string | undefined {
  const definition = CELL_TYPES[cell?.cell_type];
  if (!definition) return `cell_type ${JSON.stringify(cell?.cell_type)} is not one of code, markdown, raw`;
  if (cell.cell_type === "code" && Array.isArray(cell.outputs)) {
    for (let k = 0; k < cell.outputs.length; k++) {
      const problem = outputProblem(cell.outputs[k]);
      if (problem) return `output ${k + 1} (outputs[${k}]): ${problem}`;
    }
  }
  const validate = validators().definition(definition);
  return validate(cell) ? undefined : describeErrors(validate.errors);
}

/**
 * Schema errors of a notebook, one line each (at most 10, then a count),
 * naming the cell and the field; empty when valid.
 */
export function validateNotebook(notebook: unknown): string[] {
  const validate = validators().notebook;
  if (validate(notebook)) return [];
  const problems: string[] = [];
  const data = notebook as { cells?: unknown };
  const outsideCells = (validate.errors ?? []).filter((e) => !/^\/cells\/\d+/.test(e.instancePath));
  if (outsideCells.length > 0) problems.push(describeErrors(outsideCells));
  if (Array.isArray(data?.cells)) {
    data.cells.forEach((cell: any, i: number) => {
      const problem = cellProblem(cell);
      const id = typeof cell?.id === "string" ? `, id ${JSON.stringify(cell.id)}` : "";
      if (problem) problems.push(`cell ${i + 1} (${String(cell?.cell_type)}${id}): ${problem}`);
    });
  }
  if (problems.length === 0) problems.push(describeErrors(validate.errors));
  return problems.length > 10 ? [...problems.slice(0, 10), `... and ${problems.length - 10} more`] : problems;
}

/** A deterministic cell id for notebooks of nbformat 4.0–4.4 (which had none). */
function upgradeCellId(index: number, taken: Set<string>): string {
  for (let salt = 0; ; salt++) {
    const id = createHash("sha1").update(`cell ${index} ${salt}`).digest("hex").slice(0, 8);
    if (!taken.has(id)) return id;
  }
}

/**
 * Upgrades nbformat 4.0–4.4 to 4.5 as Jupyter's `nbformat.v4.upgrade` does:
 * every cell gets an id (here deterministic, so reruns give the same file).
 */
export function upgradeNotebook(data: any): void {
  if (data?.nbformat !== 4 || typeof data.nbformat_minor !== "number" || data.nbformat_minor >= 5 || !Array.isArray(data.cells))
    return;
  const taken = new Set<string>(data.cells.map((cell: any) => cell?.id).filter((id: unknown) => typeof id === "string"));
  data.cells.forEach((cell: any, i: number) => {
    if (cell && typeof cell === "object" && typeof cell.id !== "string") {
      cell.id = upgradeCellId(i, taken);
      taken.add(cell.id);
    }
  });
  data.nbformat_minor = 5;
}

/** Reads and validates a notebook (nbformat 4.0–4.5, upgraded to 4.5; a UTF-8 byte order mark is accepted). */
export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new NotebookError(
      code === "ENOENT" ? `notebook "${file}" does not exist` : `notebook "${file}" cannot be read: ${(error as Error).message}`,
    );
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let data: any;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new NotebookError(`notebook "${file}" is not JSON: ${(error as Error).message}`);
  }
  if (data?.nbformat !== 4) {
    throw new NotebookError(`notebook "${file}" has nbformat ${JSON.stringify(data?.nbformat)}; expected 4`);
  }
  upgradeNotebook(data);
  const problems = validateNotebook(data);
  if (problems.length > 0) {
    throw new NotebookError(`notebook "${file}" is not valid nbformat 4.5: ${problems.join("; ")}`);
  }
  return data as Notebook;
}

/** Serialises a notebook as Jupyter does. */
export function serializeNotebook(notebook: Notebook): string {
  return JSON.stringify(notebook, null, 1) + "\n";
}

/** Writes a file atomically: a temporary file in the same folder, then a rename. */
export function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

/** Validates and writes a notebook atomically. */
export function writeNotebook(file: string, notebook: Notebook): void {
  const problems = validateNotebook(notebook);
  if (problems.length > 0) {
    throw new NotebookError(`refusing to write "${file}": not valid nbformat 4.5: ${problems.join("; ")}`);
  }
  writeFileAtomic(file, serializeNotebook(notebook));
}
