import { describe, expect, it } from "vitest";
import { OutputRecorder } from "../src/runner/outputs";
import type { JupyterMessage } from "../src/jupyter/wire";

function message(msg_type: string, content: Record<string, unknown>): JupyterMessage {
  return {
    identities: [],
    header: { msg_id: "m", msg_type, session: "s", username: "u", date: "", version: "5.3" },
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
  };
}

describe("iopub messages to nbformat outputs", () => {
  it("merges consecutive streams of one name and splits text into lines", () => {
    const recorder = new OutputRecorder();
    const outputs = recorder.startCell();
    recorder.handle(message("stream", { name: "stdout", text: "a\nb" }));
    recorder.handle(message("stream", { name: "stdout", text: "c\n" }));
    recorder.handle(message("stream", { name: "stderr", text: "warn\n" }));
    recorder.handle(message("stream", { name: "stdout", text: "d\n" }));
    expect(outputs).toEqual([
      { output_type: "stream", name: "stdout", text: ["a\n", "bc\n"] },
      { output_type: "stream", name: "stderr", text: ["warn\n"] },
      { output_type: "stream", name: "stdout", text: ["d\n"] },
    ]);
  });

  it("maps execute_result, display_data and error; JSON mime types stay objects", () => {
    const recorder = new OutputRecorder();
    const outputs = recorder.startCell();
    recorder.handle(
      message("display_data", {
        data: { "text/plain": "x", "application/vnd.plotly.v1+json": { data: [1] } },
        metadata: {},
        transient: {},
      }),
    );
    recorder.handle(message("execute_result", { execution_count: 3, data: { "text/plain": "42" }, metadata: {} }));
    recorder.handle(message("error", { ename: "Error", evalue: "boom", traceback: ["Error: boom"] }));
    expect(outputs[0]).toEqual({
      output_type: "display_data",
      data: { "text/plain": ["x"], "application/vnd.plotly.v1+json": { data: [1] } },
      metadata: {},
    });
    expect(outputs[1]).toEqual({
      output_type: "execute_result",
      execution_count: 3,
      data: { "text/plain": ["42"] },
      metadata: {},
    });
    expect(outputs[2]).toEqual({ output_type: "error", ename: "Error", evalue: "boom", traceback: ["Error: boom"] });
  });

  it("clear_output clears now, or with wait just before the next output", () => {
    const recorder = new OutputRecorder();
    const outputs = recorder.startCell();
    recorder.handle(message("stream", { name: "stdout", text: "1\n" }));
    recorder.handle(message("clear_output", { wait: true }));
    expect(outputs).toHaveLength(1);
    recorder.handle(message("stream", { name: "stdout", text: "2\n" }));
    expect(outputs).toEqual([{ output_type: "stream", name: "stdout", text: ["2\n"] }]);
    recorder.handle(message("clear_output", { wait: false }));
    expect(outputs).toHaveLength(0);
  });

  it("update_display_data replaces the output with that display_id, also in an earlier cell", () => {
    const recorder = new OutputRecorder();
    const first = recorder.startCell();
    recorder.handle(
      message("display_data", { data: { "text/plain": "step 1" }, metadata: {}, transient: { display_id: "progress" } }),
    );
    const second = recorder.startCell();
    recorder.handle(
      message("update_display_data", { data: { "text/plain": "step 2" }, metadata: {}, transient: { display_id: "progress" } }),
    );
    expect(first[0]).toMatchObject({ data: { "text/plain": ["step 2"] } });
    expect(second).toHaveLength(0);
  });
});
