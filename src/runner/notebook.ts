/**
 * Notebooks in nbformat 4: types, reading with clear errors, validation
 * against the official JSON schema (nbformat 4.5, shipped in `schemas/`), and
 * atomic writing in Jupyter's own layout (1-space indent, trailing newline).
 *
 * Reference: https://nbformat.readthedocs.io/en/latest/format_description.html
 */
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

let validator: ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null } | undefined;

/** Schema errors of a notebook, as readable lines; empty when valid. */
export function validateNotebook(notebook: unknown): string[] {
  if (!validator) {
    const Ajv = require("ajv-draft-04");
    const schemaPath = path.join(projectRoot(), "schemas", "nbformat.v4.5.schema.json");
    const ajv = new Ajv({ allErrors: true, strict: false });
    validator = ajv.compile(JSON.parse(fs.readFileSync(schemaPath, "utf8")));
  }
  if (validator!(notebook)) return [];
  return (validator!.errors ?? []).slice(0, 20).map((error) => `${error.instancePath || "/"}: ${error.message}`);
}

/** Reads and validates a notebook. */
export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new NotebookError(code === "ENOENT" ? `notebook "${file}" does not exist` : `notebook "${file}" cannot be read: ${(error as Error).message}`);
  }
  let data: any;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new NotebookError(`notebook "${file}" is not JSON: ${(error as Error).message}`);
  }
  if (data?.nbformat !== 4) {
    throw new NotebookError(`notebook "${file}" has nbformat ${JSON.stringify(data?.nbformat)}; expected 4`);
  }
  const problems = validateNotebook(data);
  if (problems.length > 0) {
    throw new NotebookError(`notebook "${file}" is not valid nbformat 4.5:\n  ${problems.join("\n  ")}`);
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
    throw new NotebookError(`refusing to write "${file}": not valid nbformat 4.5:\n  ${problems.join("\n  ")}`);
  }
  writeFileAtomic(file, serializeNotebook(notebook));
}
