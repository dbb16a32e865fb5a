/**
 * Building blocks of the fused ops' WGSL kernels (src/kernels/<op>/webgpu.ts), as tfjs-backend-webgpu
 * programs (see src/engine/tfjs_internals.ts): a program writes one output tensor; inputs are read
 * as flat arrays by their names; `main(index)` gets the global invocation index.
 *
 * Two shapes of program: element-wise (one invocation per output value) and row-wise (one workgroup
 * of {@link ROW_THREADS} per row of the last axis, with workgroup reductions over the row), and a
 * column-wise one (one invocation per column, summing over rows: the weight gradients of the norms).
 */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuProgram, type WebGpuProgram, type WebGpuUniform } from "../engine/tfjs_internals";

/** Threads of a row-wise program's workgroup (a power of two). */
export const ROW_THREADS = 64;
const ELEMENT_THREADS = 64;

/** One uniform: its WGSL name and type, and its value. */
export interface Uniform {
  name: string;
  type: "f32" | "i32";
  value: number;
}

function uniformParts(uniforms: readonly Uniform[]): { declaration: string; values: WebGpuUniform[] } {
  return {
    declaration: uniforms.map((u) => `${u.name} : ${u.type},`).join(" "),
    values: uniforms.map((u) => ({ type: u.type === "f32" ? "float32" : "int32", data: [u.value] })),
  };
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const flat = (shape: number[]) => ({ x: shape.map((_, axis) => axis) });

/**
 * An element-wise program: `body` computes `value` from the inputs at `index` (flat, same shape as the
 * output), e.g. `let value = x[index] * 2.0;`.
 */
export function runElementwise(
  backend: object,
  key: string,
  inputs: Record<string, tf.TensorInfo>,
  shape: number[],
  body: string,
  uniforms: readonly Uniform[] = [],
): tf.TensorInfo {
  const { declaration, values } = uniformParts(uniforms);
  const program: WebGpuProgram = {
    variableNames: Object.keys(inputs),
    outputShape: shape,
    shaderKey: `mllm_${key}`,
    dispatchLayout: flat(shape),
    dispatch: [Math.ceil(size(shape) / ELEMENT_THREADS), 1, 1],
    workgroupSize: [ELEMENT_THREADS, 1, 1],
    size: true,
    uniforms: declaration || undefined,
    getUserCode: () => `
    fn main(index : i32) {
      if (index < uniforms.size) {
        ${body}
        setOutputAtIndex(index, value);
      }
    }`,
  };
  return runWebGpuProgram(backend, program, Object.values(inputs), "float32", values);
}

/** WGSL: reduces `partial` (one value per thread) with `op` ("+" or "max"); every thread then reads the result from partial[0]. */
function reduceSnippet(op: "+" | "max"): string {
  const combine = op === "+" ? "partial[tid] + partial[tid + s]" : "max(partial[tid], partial[tid + s])";
  return `
      workgroupBarrier();
      for (var s = ${ROW_THREADS / 2}; s > 0; s = s >> 1u) {
        if (tid < s) { partial[tid] = ${combine}; }
        workgroupBarrier();
      }`;
}

/**
 * A row-wise program over an output of `rows` rows of `cols` values (the output's own shape is
 * `shape`, rows·cols values, or [rows] when `perRow`). `body` is WGSL in which `row`, `tid` (the
 * thread in the row's workgroup), `cols` and `base` (= row·cols) are defined, and `sum(v)`/`maxOf(v)`
 * reduce a per-thread value over the workgroup (call them in uniform control flow). It writes with
 * `setOutputAtIndex`.
 */
export function runRowwise(
  backend: object,
  key: string,
  inputs: Record<string, tf.TensorInfo>,
  shape: number[],
  rows: number,
  cols: number,
  body: string,
  uniforms: readonly Uniform[] = [],
): tf.TensorInfo {
  const { declaration, values } = uniformParts([
    { name: "rows", type: "i32", value: rows },
    { name: "cols", type: "i32", value: cols },
    ...uniforms,
  ]);
  const program: WebGpuProgram = {
    variableNames: Object.keys(inputs),
    outputShape: shape,
    shaderKey: `mllm_${key}`,
    dispatchLayout: flat(shape),
    dispatch: [rows, 1, 1],
    workgroupSize: [ROW_THREADS, 1, 1],
    uniforms: declaration,
    getUserCode: () => `
    var<workgroup> partial : array<f32, ${ROW_THREADS}>;
    fn sum(v : f32) -> f32 {
      let tid = i32(localId.x);
      partial[tid] = v;${reduceSnippet("+")}
      let total = partial[0];
      workgroupBarrier();
      return total;
    }
    fn maxOf(v : f32) -> f32 {
      let tid = i32(localId.x);
      partial[tid] = v;${reduceSnippet("max")}
      let total = partial[0];
      workgroupBarrier();
      return total;
    }
    var<private> rowActive : bool;
    fn put(i : i32, v : f32) {
      if (rowActive) { setOutputAtIndex(i, v); }
    }
    fn main(index : i32) {
      let row = index / ${ROW_THREADS};
      rowActive = row < uniforms.rows;
      let tid = i32(localId.x);
      let cols = uniforms.cols;
      let base = row * cols;
      ${body}
    }`,
  };
  return runWebGpuProgram(backend, program, Object.values(inputs), "float32", values);
}

/**
 * A column-wise program: output [cols]; invocation `col` runs `body`, in which `col`, `rows` and `cols`
 * are defined, and writes `value` (e.g. a sum over rows of dy·x̂ for a norm's weight gradient).
 */
export function runColumnwise(
  backend: object,
  key: string,
  inputs: Record<string, tf.TensorInfo>,
  rows: number,
  cols: number,
  body: string,
  uniforms: readonly Uniform[] = [],
): tf.TensorInfo {
  const { declaration, values } = uniformParts([{ name: "rows", type: "i32", value: rows }, ...uniforms]);
  const program: WebGpuProgram = {
    variableNames: Object.keys(inputs),
    outputShape: [cols],
    shaderKey: `mllm_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(cols / ELEMENT_THREADS), 1, 1],
    workgroupSize: [ELEMENT_THREADS, 1, 1],
    size: true,
    uniforms: declaration,
    getUserCode: () => `
    fn main(col : i32) {
      if (col < uniforms.size) {
        let rows = uniforms.rows;
        let cols = uniforms.size;
        ${body}
        setOutputAtIndex(col, value);
      }
    }`,
  };
  return runWebGpuProgram(backend, program, Object.values(inputs), "float32", values);
}
