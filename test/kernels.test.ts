/**
 * The kernel registry (src/kernels/): every fused op is defined once, with a composite and its kernels
 * registered for the backends that implement them; the native addon's op codes come from one
 * definition (src/engine/native/op_codes.ts) on both sides of the boundary.
 */
import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { kernelDefinitions, fusedBackends, hasFusedKernels, defineKernel } from "../src/kernels";
import { loadAddon } from "../src/engine/native/addon";
import { OP_NAMES, opCode } from "../src/engine/native/op_codes";
import { registerNativeBackend } from "../src/engine/native/register";
import { scratchFolders } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const root = path.join(__dirname, "..");

describe("kernel registry", () => {
  it("lists every fused op once, each with a composite and its kernels registered where implemented", () => {
    registerNativeBackend();
    const ops = kernelDefinitions().map((definition) => definition.op);
    expect(ops).toEqual([
      "gelu",
      "layerNorm",
      "rmsNorm",
      "scaledMaskedSoftmax",
      "adamwStep",
      "dequantizeBlockwise",
      "quantizedMatMul",
      "linearWithBias",
      "mergedHeadsAttention",
      "softmaxCrossEntropy",
      "embeddingLookup",
    ]);
    // Ops that cut GPU dispatches only (issue 21): webgpu kernels; native and cpu run their composite, tfjs's ops as before.
    const webGpuOnly = ["linearWithBias", "mergedHeadsAttention", "softmaxCrossEntropy", "embeddingLookup"];
    for (const definition of kernelDefinitions()) {
      expect(typeof definition.composite, definition.op).toBe("function");
      expect(Object.keys(definition.kernels).length, definition.op).toBeGreaterThan(0);
      // Each listed implementation is the one tfjs runs.
      for (const [kernelName, implementations] of Object.entries(definition.kernels)) {
        for (const [backend, kernelFunc] of Object.entries(implementations)) {
          expect(tf.getKernel(kernelName, backend)?.kernelFunc, `${kernelName} on ${backend}`).toBe(kernelFunc);
        }
      }
      if (webGpuOnly.includes(definition.op)) {
        expect(fusedBackends(definition), definition.op).toEqual(["webgpu"]);
        expect(hasFusedKernels(definition, "native"), definition.op).toBe(false);
      } else {
        // Every other op has a native implementation of all its kernels.
        expect(fusedBackends(definition), definition.op).toContain("native");
        expect(hasFusedKernels(definition, "native"), definition.op).toBe(true);
      }
    }
  });

  it("runs the composite on a backend without the op's kernels (cpu has only dequantize)", () => {
    const gelu = kernelDefinitions().find((definition) => definition.op === "gelu")!;
    expect(hasFusedKernels(gelu, "cpu")).toBe(false);
    const dequantize = kernelDefinitions().find((definition) => definition.op === "dequantizeBlockwise")!;
    expect(fusedBackends(dequantize)).toEqual(["cpu", "native", "webgpu"]);
  });

  it("rejects a kernel name that could clash with tfjs's own, naming it", () => {
    expect(() => defineKernel({ op: "bad", summary: "", composite: () => undefined, kernels: { Relu: {} } })).toThrow(
      /kernel name "Relu" of op "bad" must start with "Mllm"/,
    );
  });
});

describe("native op codes", () => {
  it("the addon's C++ enums are generated from op_codes.ts: the build's header is what the generator writes now", () => {
    const built = path.join(root, "build", "Release", "obj", "gen", "op_codes.h");
    expect(fs.existsSync(built), `${built} missing: the addon was not built by binding.gyp's generate_op_codes action`).toBe(
      true,
    );
    const fresh = path.join(scratch("op-codes-"), "op_codes.h");
    const result = spawnSync(
      process.execPath,
      [path.join(root, "scripts", "generate-op-codes.js"), path.join(root, "src", "engine", "native", "op_codes.ts"), fresh],
      { encoding: "utf8" },
    );
    expect(result.status, result.stderr).toBe(0);
    expect(fs.readFileSync(built, "utf8")).toBe(fs.readFileSync(fresh, "utf8"));
    for (const [family, enumName] of [
      ["binary", "Binary"],
      ["unary", "Unary"],
      ["reduce", "Reduce"],
    ] as const) {
      const names = OP_NAMES[family];
      expect(fs.readFileSync(fresh, "utf8")).toContain(
        `enum class ${enumName} : int { ${names.map((name, code) => `${name} = ${code}`).join(", ")} };`,
      );
    }
  });

  it("names the reduce kinds, and the addon computes the kind each name says", () => {
    const { addon } = loadAddon();
    const x = Float32Array.from([3, -1, 4, 1, -5, 9]); // [2, 3]
    const expected: Record<string, number[]> = { Sum: [6, 5], Mean: [2, 5 / 3], Max: [4, 9], Min: [-1, -5] };
    for (const [kind, values] of Object.entries(expected)) {
      const out = new Float32Array(2);
      addon!.reduce(opCode("reduce", kind as "Sum"), x, out, 2, 3);
      expect(Array.from(out), kind).toEqual(values.map(Math.fround));
    }
  });

  it("an unknown op name or an out-of-range code fails, naming it", () => {
    expect(() => opCode("binary", "Atan2" as "Add")).toThrow(
      /no binary op "Atan2" in src\/engine\/native\/op_codes.ts \(it lists Add, Sub/,
    );
    const { addon } = loadAddon();
    const out = new Float32Array(2);
    expect(() => addon!.unary(OP_NAMES.unary.length, Float32Array.from([1, 2]), out)).toThrow(
      `unary op code ${OP_NAMES.unary.length} is not in [0, ${OP_NAMES.unary.length - 1}]`,
    );
    expect(() => addon!.reduce(-1, Float32Array.from([1, 2]), out, 1, 2)).toThrow("reduce kind code -1 is not in [0, 3]");
  });
});
