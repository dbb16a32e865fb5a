import { describe, expect, it } from "vitest";
import { mapCompiledLine, stripMachinePaths, runtimeError } from "../src/kernel/traceback";

describe("tracebacks", () => {
  const cell = [
    'import * as tf from "@tensorflow/tfjs";',
    "",
    "interface Foo { a: number }",
    "const x: Foo = { a: 1 };",
    "function bad(n: number): number {",
    '  if (n > 0) throw new Error("bad " + n);',
    "  return n;",
    "}",
    "bad(x.a)",
  ].join("\n");
  const compiled = [
    "var __importStar = function (mod) { return mod; };",
    'Object.defineProperty(exports, "__esModule", { value: true });',
    "exports.x = exports.tf = exports.bad = void 0;",
    'const tf = __importStar(require("@tensorflow/tfjs"));',
    "exports.tf = tf;",
    "const x = { a: 1 };",
    "exports.x = x;",
    "function bad(n) {",
    '    if (n > 0) throw new Error("bad " + n);',
    "    return n;",
    "}",
    "exports.bad = bad;",
    "bad(x.a);",
  ].join("\n");

  it("maps compiled JavaScript lines back to the TypeScript cell", () => {
    expect(mapCompiledLine(cell, compiled, 9)).toBe(6);
    expect(mapCompiledLine(cell, compiled, 13)).toBe(9);
    expect(mapCompiledLine(cell, compiled, 6)).toBe(4);
    expect(mapCompiledLine(cell, compiled, 2)).toBeUndefined();
  });

  it("strips the project root and other absolute paths", () => {
    expect(stripMachinePaths("at f (/home/ada/mllm-labs/dist/src/nn/linear.js:10:5)", "/home/ada/mllm-labs")).toBe(
      "at f (dist/src/nn/linear.js:10:5)",
    );
    expect(stripMachinePaths("at g (/usr/lib/node/a/b/c.js:1:1)", "/home/ada/mllm-labs")).toBe("at g (…/b/c.js:1:1)");
  });

  it("builds the error content from a thrown value of any kind", () => {
    const fromString = runtimeError("plain", { cellSource: "x", executionCount: 1, projectRoot: "/p" });
    expect(fromString).toEqual({ ename: "Thrown", evalue: "plain", traceback: ["Thrown: plain"] });
    const error = new TypeError("bad /p/secret/file.ts");
    error.stack = "TypeError: bad\n    at bad (evalmachine.<anonymous>:9:22)\n    at node:internal/process:1:1";
    const content = runtimeError(error, { cellSource: cell, compiled, executionCount: 5, projectRoot: "/p" });
    expect(content.ename).toBe("TypeError");
    expect(content.evalue).toBe("bad secret/file.ts");
    expect(content.traceback).toEqual([
      "TypeError: bad secret/file.ts",
      "  In [5], line 6:",
      '    if (n > 0) throw new Error("bad " + n);',
      "    at bad (cell line 6)",
    ]);
  });
});
