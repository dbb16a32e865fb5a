/**
 * A cell's last value over the real protocol: `text/plain` of the
 * `execute_result` is what Node's REPL prints for that value (strings quoted),
 * and rich values keep the bundle their display helper made.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as repl from "repl";
import * as util from "util";
import { KernelClient } from "../src/runner/kernel_client";
import { kernelArgv } from "../src/kernel/kernelspec";
import { projectRoot } from "../src/util/project_root";
import { html } from "../kernel-extensions/rich";

const root = projectRoot();

/** Cell source → the same value built in this process, printed by Node's own REPL writer. */
const CASES: [string, () => unknown][] = [
  ['"42"', () => "42"],
  ["42", () => 42],
  ['"it\'s"', () => "it's"],
  ['"two\\nlines"', () => "two\nlines"],
  ['[1, "2", true]', () => [1, "2", true]],
  ["({ a: { b: { c: { d: 1 } } }, list: [1, 2, 3] })", () => ({ a: { b: { c: { d: 1 } } }, list: [1, 2, 3] })],
  ['new Map([["k", 1]])', () => new Map([["k", 1]])],
  ["new Set(Array.from({ length: 120 }, (_, i) => i))", () => new Set(Array.from({ length: 120 }, (_, i) => i))],
  ["10n", () => 10n],
  ['Symbol("s")', () => Symbol("s")],
  ["new Proxy({ p: 1 }, {})", () => new Proxy({ p: 1 }, {})],
  ["new (class Point { x = 1; y = 2 })()", () => new (class Point { x = 1; y = 2 })()],
  ["new Float32Array([0.5, 1])", () => new Float32Array([0.5, 1])],
];

describe("a cell's last value", () => {
  let client: KernelClient;
  beforeAll(async () => {
    client = await KernelClient.start({ argv: kernelArgv(root), cwd: root });
  });
  afterAll(async () => {
    await client?.shutdown();
  });

  async function shown(code: string): Promise<Record<string, unknown>> {
    const { reply, messages } = await client.execute(code);
    expect(reply.content.status, code).toBe("ok");
    const results = messages.filter((m) => m.header.msg_type === "execute_result");
    expect(results, code).toHaveLength(1);
    return results[0].content.data;
  }

  it("shows as Node's REPL prints it: a string quoted, so '42' and 42 differ", async () => {
    expect((await shown('"42"'))["text/plain"]).toBe("'42'");
    expect((await shown("42"))["text/plain"]).toBe("42");
    for (const [code, build] of CASES) {
      const data = await shown(code);
      expect(data["text/plain"], code).toBe(repl.writer(build()));
      expect(Object.keys(data), code).toEqual(["text/plain"]);
    }
  });

  it("follows util.inspect.defaultOptions as the REPL does", async () => {
    const deep = "({ a: { b: { c: { d: 1 } } } })";
    expect((await shown(deep))["text/plain"]).toBe("{ a: { b: { c: [Object] } } }");
    await client.execute('import * as util from "util";\nutil.inspect.defaultOptions.depth = 5;');
    expect((await shown(deep))["text/plain"]).toBe(util.inspect({ a: { b: { c: { d: 1 } } } }, { depth: 5 }));
    await client.execute("util.inspect.defaultOptions.depth = 2;");
  });

  it("keeps a display helper's bundle, and a tensor's own text", async () => {
    const data = await shown('import { html } from "mllm-labs/display";\nhtml("<b>bold</b> move")');
    expect(data).toEqual(html("<b>bold</b> move").toMimeBundle().data);
    const tensor = await shown('import * as tf from "@tensorflow/tfjs";\nconst shownTensor = tf.tensor1d([1, 2]);\nshownTensor');
    expect(tensor["text/plain"]).toBe("Tensor\n    [1, 2]");
    await client.execute("shownTensor.dispose();");
  });

  it("shows nothing for a statement, undefined or null", async () => {
    for (const code of ["const nothing = undefined;", "undefined", "null"]) {
      const { reply, messages } = await client.execute(code);
      expect(reply.content.status).toBe("ok");
      expect(messages.filter((m) => m.header.msg_type === "execute_result"), code).toEqual([]);
    }
  });
});
