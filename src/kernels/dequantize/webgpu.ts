/** Blockwise dequantization on the `webgpu` backend: one WGSL program (real 32-bit integer shifts), one invocation per value. */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuProgram, type WebGpuProgram } from "../../engine/tfjs_internals";
import type { DequantizeAttrs } from "./attrs";
import type { KernelArgs } from "../registry";

/** inputs packed int32 [W], code [16 or 256], absmax [blocks]; attrs DequantizeAttrs → float32 [count]. */
export function dequantizeWebGpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { packed, code, absmax } = inputs;
  const { bits, count, blockSize } = attrs as unknown as DequantizeAttrs;
  const body =
    bits === 4
      ? `let word = bitcast<u32>(packed[index / 8]);
        let byte = (word >> (u32((index / 2) % 4) * 8u)) & 255u;
        let q = select(byte >> 4u, byte & 15u, (index % 2) == 1);`
      : `let word = bitcast<u32>(packed[index / 4]);
        let q = (word >> (u32(index % 4) * 8u)) & 255u;`;
  const program: WebGpuProgram = {
    variableNames: ["packed", "code", "absmax"],
    outputShape: [count],
    shaderKey: `mllmDequantizeBlockwise${bits}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(count / 64), 1, 1],
    workgroupSize: [64, 1, 1],
    size: true,
    uniforms: "blockSize : i32,",
    getUserCode: () => `
    fn main(index : i32) {
      if (index < uniforms.size) {
        ${body}
        setOutputAtIndex(index, code[q] * absmax[index / uniforms.blockSize]);
      }
    }`,
  };
  return runWebGpuProgram(backend, program, [packed, code, absmax], "float32", [{ type: "int32", data: [blockSize] }]);
}
