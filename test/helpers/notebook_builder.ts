/** Small executed notebooks for the checker's tests: one code cell per entry, with its outputs and tags. */
import type { Notebook, Output } from "../../src/runner/notebook";

export function notebook(cells: { source: string; outputs: Output[]; tags?: string[] }[]): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: cells.map((c, i) => ({
      cell_type: "code",
      id: `c${i}`,
      source: c.source,
      metadata: c.tags ? { tags: c.tags } : {},
      execution_count: i + 1,
      outputs: c.outputs,
    })),
  };
}

export const stdout = (text: string): Output => ({ output_type: "stream", name: "stdout", text });
