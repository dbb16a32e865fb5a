/**
 * From iopub messages to nbformat outputs, as nbclient records them:
 * consecutive stream messages of the same name merge into one output;
 * `clear_output` empties the cell (with `wait`, just before the next output);
 * `update_display_data` replaces, in every cell recorded so far, the outputs
 * that carry its `display_id`.
 *
 * Reference: nbclient `NotebookClient.output()` and `process_message()`
 * (https://github.com/jupyter/nbclient/blob/main/nbclient/client.py).
 */
import type { JupyterMessage } from "../jupyter/wire";
import { joinSource, outputProblem, splitLines, type ErrorOutput, type Output } from "./notebook";

/** Text stored as nbformat's list of lines. */
function multiline(text: string): string[] {
  return splitLines(text);
}

/** Binary-free mime data as nbformat stores it: text types as line lists, JSON types as objects. */
export function mimeDataForNotebook(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [mime, value] of Object.entries(data)) {
    const isJson = mime === "application/json" || mime.endsWith("+json");
    out[mime] = typeof value === "string" && !isJson ? multiline(value) : value;
  }
  return out;
}

/**
 * The output itself when it is valid nbformat, otherwise an error output that
 * says what was wrong (so one bad display value never stops the notebook from
 * being written).
 */
export function validOutput(output: Output): Output {
  const problem = outputProblem(output);
  if (!problem) return output;
  const evalue = `the cell produced an output that is not valid nbformat 4.5 and was dropped: ${problem}`;
  const error: ErrorOutput = {
    output_type: "error",
    ename: "InvalidOutputError",
    evalue,
    traceback: [`InvalidOutputError: ${evalue}`],
  };
  return error;
}

/** Records the outputs of the cells of one notebook run. */
export class OutputRecorder {
  /** display_id → the outputs (of any cell) that show it. */
  private readonly displays = new Map<string, Output[]>();
  private clearOnNext = false;
  private outputs: Output[] = [];

  /** Starts recording a new cell; returns the array that will hold its outputs. */
  startCell(): Output[] {
    this.outputs = [];
    this.clearOnNext = false;
    return this.outputs;
  }

  /** The current cell's outputs (the array may be replaced by clear_output). */
  get current(): Output[] {
    return this.outputs;
  }

  /** Applies one iopub message; returns true if it changed the current cell's outputs. */
  handle(message: JupyterMessage): boolean {
    const content = message.content;
    const type = message.header.msg_type;
    if (type === "clear_output") {
      if (content.wait) this.clearOnNext = true;
      else this.outputs.length = 0;
      return true;
    }
    if (type === "update_display_data") {
      const id = content.transient?.display_id;
      for (const output of (id && this.displays.get(id)) || []) {
        const updated = { ...output, data: mimeDataForNotebook(content.data ?? {}), metadata: content.metadata ?? {} } as Output;
        const problem = outputProblem(updated);
        if (problem) {
          // Keep the display as it was and say why the update was not applied.
          this.outputs.push(validOutput(updated));
          continue;
        }
        (output as { data: unknown }).data = (updated as { data: unknown }).data;
        (output as { metadata: unknown }).metadata = (updated as { metadata: unknown }).metadata;
      }
      return true;
    }
    let output: Output | undefined;
    switch (type) {
      case "stream": {
        if (this.clearOnNext) this.clear();
        const last = this.outputs[this.outputs.length - 1];
        if (last && last.output_type === "stream" && last.name === content.name) {
          last.text = multiline(joinSource(last.text) + String(content.text));
          return true;
        }
        output = { output_type: "stream", name: content.name, text: multiline(String(content.text)) };
        break;
      }
      case "display_data":
        output = { output_type: "display_data", data: mimeDataForNotebook(content.data ?? {}), metadata: content.metadata ?? {} };
        break;
      case "execute_result":
        output = {
          output_type: "execute_result",
          execution_count: content.execution_count ?? null,
          data: mimeDataForNotebook(content.data ?? {}),
          metadata: content.metadata ?? {},
        };
        break;
      case "error":
        output = {
          output_type: "error",
          ename: String(content.ename),
          evalue: String(content.evalue),
          traceback: (content.traceback ?? []).map(String),
        };
        break;
      default:
        return false;
    }
    if (this.clearOnNext) this.clear();
    const checked = validOutput(output);
    this.outputs.push(checked);
    const id = content.transient?.display_id;
    if (checked === output && id && (type === "display_data" || type === "execute_result")) {
      const list = this.displays.get(id) ?? [];
      list.push(output);
      this.displays.set(id, list);
    }
    return true;
  }

  private clear(): void {
    this.outputs.length = 0;
    this.clearOnNext = false;
  }
}
