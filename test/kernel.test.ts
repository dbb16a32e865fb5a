/**
 * The lab kernel over the real protocol: the gaps of plain tslab it fixes,
 * interrupts, and the runner's handling of failing, hung and crashing cells.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { KernelClient, KernelError } from "../src/runner/kernel_client";
import { kernelArgv } from "../src/kernel/kernelspec";
import { projectRoot } from "../src/util/project_root";
import { runNotebook } from "../src/runner/run";
import { readNotebook, writeNotebook, type Notebook } from "../src/runner/notebook";
import { scratchFolders } from "./helpers/scratch";
import { alive } from "./helpers/process";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = projectRoot();

describe("lab kernel", () => {
  let client: KernelClient;
  beforeAll(async () => {
    client = await KernelClient.start({ argv: kernelArgv(root), cwd: root });
  });
  afterAll(async () => {
    await client?.shutdown();
  });

  it("answers kernel_info with status ok and TypeScript language info", async () => {
    const info = await client.kernelInfo();
    expect(info.status).toBe("ok");
    expect(info.language_info).toMatchObject({ name: "typescript", file_extension: ".ts" });
    expect(await client.ping()).toBe(true);
  });

  it("sends a cell's last value as execute_result, not as stdout", async () => {
    const { reply, messages } = await client.execute("const base = 40;\nbase + 2");
    expect(reply.content.status).toBe("ok");
    const types = messages.map((m) => m.header.msg_type);
    expect(types).toEqual(["execute_result"]);
    expect(messages[0].content.data["text/plain"]).toBe("42");
    expect(messages[0].content.execution_count).toBe(reply.content.execution_count);
  });

  it("reports a runtime error with ename, evalue and the cell's line, without absolute paths", async () => {
    const code = "const ok = 1;\nfunction explode(n: number): number {\n  throw new RangeError(`n is ${n}`);\n}\nexplode(ok)";
    const { reply, messages } = await client.execute(code);
    expect(reply.content).toMatchObject({ status: "error", ename: "RangeError", evalue: "n is 1" });
    expect(messages.map((m) => m.header.msg_type)).toEqual(["error"]);
    const traceback: string[] = messages[0].content.traceback;
    expect(traceback[0]).toBe("RangeError: n is 1");
    expect(traceback).toContain("    throw new RangeError(`n is ${n}`);");
    expect(traceback.join("\n")).toMatch(/line 3:/);
    expect(traceback.join("\n")).not.toContain(root);
    expect(traceback.join("\n")).not.toMatch(/node:internal|evalmachine/);
  });

  it("reports a compile error with the line, column and a caret", async () => {
    const { reply } = await client.execute('const n: number = "text";');
    expect(reply.content.status).toBe("error");
    expect(reply.content.ename).toBe("CompileError");
    expect(reply.content.evalue).toMatch(/line 1:7 - Type 'string' is not assignable to type 'number'/);
    expect(reply.content.traceback).toContain("          ^");
  });

  it("runs a cell sent right after a failing one (tslab aborts requests within 200 ms of an error)", async () => {
    const failing = client.execute('throw new Error("first")');
    const next = client.execute("1 + 1");
    const [first, second] = await Promise.all([failing, next]);
    expect(first.reply.content.status).toBe("error");
    expect(second.reply.content.status).toBe("ok");
    expect(second.messages[0].content.data["text/plain"]).toBe("2");
  });

  it("reports a rejected await with the thrown value", async () => {
    const { reply } = await client.execute('await Promise.reject(new TypeError("async failure"))');
    expect(reply.content).toMatchObject({ status: "error", ename: "TypeError", evalue: "async failure" });
  });

  it("keeps stdout, stderr and displays in order", async () => {
    const code = [
      'import { display, html } from "mllm-labs/display";',
      'console.log("one");',
      'display(html("<b>two</b>"));',
      'console.error("three");',
    ].join("\n");
    const { messages } = await client.execute(code);
    expect(messages.map((m) => `${m.header.msg_type}:${m.content.name ?? Object.keys(m.content.data ?? {}).join("+")}`)).toEqual([
      "stream:stdout",
      "display_data:text/plain+text/html",
      "stream:stderr",
    ]);
  });

  it("interrupts a cell waiting on a promise, and keeps its state", async () => {
    await client.execute("const kept = 7;");
    const hung = client.execute("await new Promise(() => undefined)");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await client.interrupt();
    const { reply } = await hung;
    expect(reply.content).toMatchObject({ status: "error", ename: "KeyboardInterrupt" });
    const after = await client.execute("kept * 6");
    expect(after.messages[0].content.data["text/plain"]).toBe("42");
  });
});

function tempNotebook(cells: { source: string; tags?: string[] }[]): string {
  const dir = scratch("mllm-labs-run-");
  const file = path.join(dir, "t.ipynb");
  const notebook: Notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: cells.map((c, i) => ({
      cell_type: "code",
      id: `c${i}`,
      source: c.source,
      metadata: c.tags ? { tags: c.tags } : {},
      execution_count: null,
      outputs: [],
    })),
  };
  writeNotebook(file, notebook);
  return file;
}

describe("mllm-labs run", () => {
  it("stops at the first failing cell, writes the partial notebook, honours raises-exception and skip-execution", async () => {
    const file = tempNotebook([
      { source: 'console.log("ran")' },
      { source: 'throw new Error("expected")', tags: ["raises-exception"] },
      { source: "this would not compile ((", tags: ["skip-execution"] },
      { source: 'throw new Error("unexpected")' },
      { source: 'console.log("never")' },
    ]);
    const outDir = path.join(path.dirname(file), "out");
    const result = await runNotebook(file, { outDir });
    expect(result.ok).toBe(false);
    expect(result.failure).toMatch(/cell 4 .*unexpected/);
    const written = readNotebook(path.join(outDir, "t.ipynb"));
    const cells = written.cells as any[];
    expect(cells[0].outputs[0].text).toEqual(["ran\n"]);
    expect(cells[1].outputs[0]).toMatchObject({ output_type: "error", evalue: "expected" });
    expect(cells[2].outputs).toEqual([]);
    expect(cells[3].outputs[0]).toMatchObject({ output_type: "error", evalue: "unexpected" });
    expect(cells[4].execution_count).toBeNull();
    expect(written.metadata.kernelspec.name).toBe("mllm-labs");
  });

  it("interrupts a cell past its timeout and says which", async () => {
    const file = tempNotebook([{ source: "1" }, { source: "await new Promise((resolve) => setTimeout(resolve, 60_000))" }]);
    const result = await runNotebook(file, { outDir: path.dirname(file) + "/out", timeout: 2 });
    expect(result.ok).toBe(false);
    expect(result.failure).toMatch(/cell 2 timed out: the cell ran longer than 2 s/);
  });

  it("names the cell when the kernel dies, and still writes the notebook", async () => {
    const file = tempNotebook([{ source: 'console.log("before")' }, { source: "process.exit(3)" }]);
    const outDir = path.join(path.dirname(file), "out");
    const result = await runNotebook(file, { outDir });
    expect(result.ok).toBe(false);
    expect(result.failure).toMatch(/the kernel died while running cell 2 \(process.exit\(3\)\).*code 3/);
    const cells = readNotebook(path.join(outDir, "t.ipynb")).cells as any[];
    expect(cells[0].outputs[0].text).toEqual(["before\n"]);
    expect(cells[1].outputs[0].ename).toBe("DeadKernelError");
  });

  it("refuses an invalid notebook with the file and the schema error", async () => {
    const dir = scratch("mllm-labs-bad-");
    const file = path.join(dir, "bad.ipynb");
    fs.writeFileSync(
      file,
      JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "code", source: "1" }] }),
    );
    await expect(runNotebook(file)).rejects.toThrow(/bad.ipynb" is not valid nbformat 4.5/);
    fs.writeFileSync(file, "{ truncated");
    await expect(runNotebook(file)).rejects.toThrow(/bad.ipynb" is not JSON/);
    await expect(runNotebook(path.join(dir, "missing.ipynb"))).rejects.toThrow(/missing.ipynb" does not exist/);
  });
});

describe("kernel client failures", () => {
  it("says why a kernel that exits at start-up did not start", async () => {
    await expect(
      KernelClient.start({
        argv: [process.execPath, "-e", 'console.error("no such kernel"); process.exit(4)'],
        startTimeout: 10,
      }),
    ).rejects.toThrow(/exited during start-up \(code 4\):\nno such kernel/);
  });
  it("is a KernelError of kind died", async () => {
    const error = await KernelClient.start({ argv: [process.execPath, "-e", "process.exit(1)"], startTimeout: 10 }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(KernelError);
    expect(error.kind).toBe("died");
  });

  /** Runs `body` with TMPDIR (what `os.tmpdir()` reads) pointing at a fresh folder; returns that folder. */
  async function withOwnTmpdir(body: () => Promise<unknown>): Promise<string> {
    const tmp = scratch("mllm-labs-tmpdir-");
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      await body();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    return tmp;
  }

  it("removes its temporary connection folder when the kernel exits at start-up or does not answer", async () => {
    let died: unknown;
    const afterDeath = await withOwnTmpdir(async () => {
      died = await KernelClient.start({ argv: [process.execPath, "-e", "process.exit(1)"], startTimeout: 10 }).catch((e) => e);
    });
    expect(died).toBeInstanceOf(KernelError);
    expect(fs.readdirSync(afterDeath)).toEqual([]);
    let silent: unknown;
    const afterTimeout = await withOwnTmpdir(async () => {
      silent = await KernelClient.start({
        argv: [process.execPath, "-e", "setTimeout(() => {}, 60_000)"],
        startTimeout: 1,
      }).catch((e) => e);
    });
    expect(silent).toMatchObject({ kind: "timeout" });
    expect(fs.readdirSync(afterTimeout)).toEqual([]);
  });

  it("a process that exits without shutting its kernel down kills the kernel and removes the connection folder", async () => {
    const tmp = scratch("mllm-labs-tmpdir-");
    // The built library in a child process: start a kernel, print its pid, exit at once (no shutdown).
    const script = [
      `const { KernelClient } = require(${JSON.stringify(path.join(root, "dist", "src", "runner", "kernel_client.js"))});`,
      `const { kernelArgv } = require(${JSON.stringify(path.join(root, "dist", "src", "kernel", "kernelspec.js"))});`,
      `KernelClient.start({ argv: kernelArgv(${JSON.stringify(root)}), cwd: ${JSON.stringify(root)} }).then(async (client) => {`,
      '  const { messages } = await client.execute("process.pid");',
      '  console.log(messages[0].content.data["text/plain"]);',
      "  process.exit(0);",
      "});",
    ].join("\n");
    const child = spawnSync(process.execPath, ["-e", script], {
      env: { ...process.env, TMPDIR: tmp },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    const kernel = Number(child.stdout.trim());
    expect(Number.isInteger(kernel) && kernel > 0, child.stdout).toBe(true);
    const deadline = Date.now() + 5000;
    while (alive(kernel) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(alive(kernel), `kernel ${kernel} still running`).toBe(false);
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 90_000);
});
