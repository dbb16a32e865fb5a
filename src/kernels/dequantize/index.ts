/**
 * `dequantizeBlockwise`: codes packed in int32 words → code[q] · absmax[block] as float32, for 4-bit (two
 * codes a byte, high nibble first — bitsandbytes' order, NF4) and 8-bit (a code a byte) packings. Bytes
 * sit little-endian in the words, so the words are bitsandbytes' packed bytes viewed as int32.
 *
 * Reference: bitsandbytes `functional.py` `dequantize_4bit` / `dequantize_blockwise`.
 * Kernels: a plain loop on `cpu` and `native` (cpu.ts), a WGSL program on `webgpu` (webgpu.ts); the
 * composite elsewhere.
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { bytesToWords, type DequantizeAttrs } from "./attrs";
import { dequantizeComposite } from "./composite";
import { dequantizeCpu } from "./cpu";
import { dequantizeWebGpu } from "./webgpu";

export { bytesToWords, dequantizeComposite, type DequantizeAttrs };

export const DEQUANTIZE_KERNEL = "MllmDequantizeBlockwise";

export const DEQUANTIZE = defineKernel({
  op: "dequantizeBlockwise",
  summary: "blockwise 4/8-bit dequantization (NF4); (packed, code, absmax) → values",
  composite: dequantizeComposite,
  kernels: { [DEQUANTIZE_KERNEL]: { cpu: dequantizeCpu, native: dequantizeCpu, webgpu: dequantizeWebGpu } },
});

/** packed: int32 words; code: float32 [16 or 256]; absmax: float32 [blocks] → float32 [count] */
export function dequantizeBlockwise(packed: tf.Tensor, code: tf.Tensor, absmax: tf.Tensor, attrs: DequantizeAttrs): tf.Tensor1D {
  if (hasFusedKernels(DEQUANTIZE)) {
    return tf.engine().runKernel(DEQUANTIZE_KERNEL, { packed, code, absmax }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  }
  return dequantizeComposite(packed, code, absmax, attrs);
}
