/**
 * The per-head products of attention on the `webgpu` backend: one WGSL program per product that reads
 * its operands, and writes its output, through strides (src/kernels/merged_heads_attention/attrs.ts),
 * so the heads' split [B, T, H·Dh] → [B, H, T, Dh] and merge back need no transpose dispatch. One
 * invocation per output value, a loop over the inner dimension (Dh or Tk: short at the labs' sizes).
 */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuProgram, type WebGpuProgram } from "../../engine/tfjs_internals";
import type { KernelArgs } from "../registry";
import type { HeadsLayout, HeadsMatMulAttrs } from "./attrs";

const THREADS = 64;
const LAYOUT_FIELDS = ["batch", "head", "row", "col"] as const;
const SIZES = ["heads", "rows", "cols", "inner"] as const;

/** inputs left, right; attrs HeadsMatMulAttrs → out (shape attrs.outShape), in one dispatch. */
export function headsMatMulWebGpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const a = attrs as HeadsMatMulAttrs;
  const layouts: [string, HeadsLayout][] = [
    ["left", a.left],
    ["right", a.right],
    ["out", a.out],
  ];
  const names = [...SIZES, ...layouts.flatMap(([name]) => LAYOUT_FIELDS.map((field) => `${name}_${field}`))];
  const values = [
    ...SIZES.map((size) => a[size]),
    ...layouts.flatMap(([, layout]) => LAYOUT_FIELDS.map((field) => layout[field])),
  ];
  const total = a.batch * a.heads * a.rows * a.cols;
  const u = (name: string) => `uniforms.${name}`;
  const program: WebGpuProgram = {
    variableNames: ["left", "right"],
    outputShape: [...a.outShape],
    shaderKey: "mllm_heads_matmul",
    dispatchLayout: { x: a.outShape.map((_, axis) => axis) },
    dispatch: [Math.ceil(total / THREADS), 1, 1],
    workgroupSize: [THREADS, 1, 1],
    size: true,
    uniforms: names.map((name) => `${name} : i32,`).join(" "),
    getUserCode: () => `
    fn main(index : i32) {
      if (index < uniforms.size) {
        let n = index % ${u("cols")};
        let m = (index / ${u("cols")}) % ${u("rows")};
        let h = (index / (${u("cols")} * ${u("rows")})) % ${u("heads")};
        let b = index / (${u("cols")} * ${u("rows")} * ${u("heads")});
        var leftIndex = b * ${u("left_batch")} + h * ${u("left_head")} + m * ${u("left_row")};
        var rightIndex = b * ${u("right_batch")} + h * ${u("right_head")} + n * ${u("right_col")};
        var value = 0.0;
        for (var k = 0; k < ${u("inner")}; k++) {
          value += left[leftIndex] * right[rightIndex];
          leftIndex += ${u("left_col")};
          rightIndex += ${u("right_row")};
        }
        setOutputAtIndex(b * ${u("out_batch")} + h * ${u("out_head")} + m * ${u("out_row")} + n * ${u("out_col")}, value);
      }
    }`,
  };
  return runWebGpuProgram(
    backend,
    program,
    [inputs.left, inputs.right],
    "float32",
    values.map((value) => ({ type: "int32" as const, data: [value] })),
  );
}
