/**
 * Products with a 4-bit weight on the `webgpu` backend: one WGSL program per product, one invocation per
 * output value, each dequantizing the weight values it reads (real 32-bit integer shifts) — the float
 * weight is never written to GPU memory. The code tables are constants of the shader.
 */
import type * as tf from "@tensorflow/tfjs";
import { runWebGpuProgram, type WebGpuProgram } from "../../engine/tfjs_internals";
import type { QuantizedMatMulAttrs } from "./attrs";
import type { KernelArgs } from "../registry";

/** A WGSL private array holding a code table (9 significant digits: float32 values round-trip). */
function table(name: string, values: Float32Array): string {
  return `var<private> ${name} : array<f32, ${values.length}> = array<f32, ${values.length}>(${Array.from(values, (v) => v.toPrecision(9)).join(", ")});`;
}

/** A short key of a table's values (programs are cached by shader key). */
function tableKey(values: Float32Array): string {
  let hash = 0;
  for (const byte of new Uint8Array(values.buffer, values.byteOffset, values.byteLength)) hash = (hash * 31 + byte) >>> 0;
  return hash.toString(36);
}

function run(transposeWeight: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo => {
    const settings = attrs as unknown as QuantizedMatMulAttrs;
    const { x, packed, absmax, absmaxCodes, nestedAbsmax } = inputs;
    const doubleQuant = absmaxCodes !== undefined;
    const rows = x.shape[0];
    const columns = transposeWeight ? settings.outFeatures : settings.inFeatures;
    const constant = doubleQuant
      ? `let codeWord = bitcast<u32>(absmaxCodes[block / 4]);
         let codeByte = (codeWord >> (u32(block % 4) * 8u)) & 255u;
         let scaled = NESTED_CODE[codeByte] * nestedAbsmax[block / uniforms.nestedBlockSize];
         return scaled + uniforms.offset;`
      : "return absmax[block];";
    // Forward: y[n, o] = Σ_k x[n, k]·W[o, k]; gradient: dx[n, k] = Σ_o dy[n, o]·W[o, k].
    const loop = transposeWeight
      ? `for (var k = 0; k < uniforms.inFeatures; k++) { sum += x[n * uniforms.inFeatures + k] * weightAt(c * uniforms.inFeatures + k); }`
      : `for (var o = 0; o < uniforms.outFeatures; o++) { sum += x[n * uniforms.outFeatures + o] * weightAt(o * uniforms.inFeatures + c); }`;
    const program: WebGpuProgram = {
      variableNames: doubleQuant ? ["x", "packed", "absmaxCodes", "nestedAbsmax"] : ["x", "packed", "absmax"],
      outputShape: [rows, columns],
      shaderKey: `mllmQuantizedMatMul_${transposeWeight ? "xwt" : "xw"}_${doubleQuant ? "dq" : "f"}_${tableKey(settings.code)}`,
      dispatchLayout: { x: [0, 1] },
      dispatch: [Math.ceil((rows * columns) / 64), 1, 1],
      workgroupSize: [64, 1, 1],
      size: true,
      uniforms: "inFeatures : i32, outFeatures : i32, blockSize : i32, nestedBlockSize : i32, offset : f32,",
      getUserCode: () => `
    ${table("CODE", settings.code)}
    ${doubleQuant ? table("NESTED_CODE", settings.nestedCode) : ""}
    fn blockConstant(block : i32) -> f32 {
      ${constant}
    }
    fn weightAt(i : i32) -> f32 {
      let word = bitcast<u32>(packed[i / 8]);
      let byte = (word >> (u32((i / 2) % 4) * 8u)) & 255u;
      let q = select(byte >> 4u, byte & 15u, (i % 2) == 1);
      return CODE[q] * blockConstant(i / uniforms.blockSize);
    }
    fn main(index : i32) {
      if (index < uniforms.size) {
        let n = index / ${columns};
        let c = index % ${columns};
        var sum = 0.0;
        ${loop}
        setOutputAtIndex(index, sum);
      }
    }`,
    };
    const inputList = doubleQuant ? [x, packed, absmaxCodes, nestedAbsmax] : [x, packed, absmax];
    return runWebGpuProgram(backend, program, inputList, "float32", [
      { type: "int32", data: [settings.inFeatures] },
      { type: "int32", data: [settings.outFeatures] },
      { type: "int32", data: [settings.blockSize] },
      { type: "int32", data: [Math.max(1, settings.nestedBlockSize)] },
      { type: "float32", data: [settings.offset] },
    ]);
  };
}

/** inputs x [N, in], the weight's tensors → x · Wᵀ [N, out]. */
export const quantizedMatMulWebGpu = run(true);
/** inputs dy [N, out], the weight's tensors → dy · W [N, in]. */
export const quantizedMatMulGradWebGpu = run(false);
