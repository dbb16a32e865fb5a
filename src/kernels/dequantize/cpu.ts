/** Blockwise dequantization on the CPU backends (`cpu` and `native`): a plain loop over the inputs' arrays. */
import type * as tf from "@tensorflow/tfjs";
import { storedValues } from "../../engine/tfjs_internals";
import type { DequantizeAttrs } from "./attrs";
import type { KernelArgs } from "../registry";

/** The loop: words (bytes little-endian, 4-bit codes high nibble first) → code[q] · absmax[block]. */
function dequantizeValues(words: Int32Array, code: Float32Array, absmax: Float32Array, attrs: DequantizeAttrs): Float32Array {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  const out = new Float32Array(attrs.count);
  const { blockSize, count } = attrs;
  if (attrs.bits === 4) {
    for (let i = 0; i < count; i++) {
      const byte = bytes[i >> 1];
      out[i] = Math.fround(code[i & 1 ? byte & 15 : byte >> 4] * absmax[(i / blockSize) | 0]);
    }
  } else {
    for (let i = 0; i < count; i++) out[i] = Math.fround(code[bytes[i]] * absmax[(i / blockSize) | 0]);
  }
  return out;
}

/** inputs packed int32 [W], code [16 or 256], absmax [blocks]; attrs DequantizeAttrs → float32 [count]. */
export function dequantizeCpu({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { packed, code, absmax } = inputs;
  const read = (t: tf.TensorInfo) => storedValues(backend, t.dataId) as ArrayLike<number>;
  const settings = attrs as unknown as DequantizeAttrs;
  const out = dequantizeValues(
    read(packed) as Int32Array,
    Float32Array.from(read(code)),
    Float32Array.from(read(absmax)),
    settings,
  );
  return (backend as { makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo }).makeTensorInfo(
    [settings.count],
    "float32",
    out,
  );
}
