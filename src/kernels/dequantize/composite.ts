/** Blockwise dequantization in tfjs ops (backends without the kernel): integer arithmetic, exact where the backend's int32 division is. */
import * as tf from "@tensorflow/tfjs";
import type { DequantizeAttrs } from "./attrs";

/** packed: int32 [W]; code: float32 [16 or 256]; absmax: float32 [blocks] → float32 [count]. */
export function dequantizeComposite(packed: tf.Tensor, code: tf.Tensor, absmax: tf.Tensor, attrs: DequantizeAttrs): tf.Tensor1D {
  return tf.tidy(() => {
    const words = packed.reshape([-1, 1]); // [W, 1]
    // Bytes of each word, little-endian: floor(word / 256^k) mod 256 (floored division works for negative words too).
    const byteList = [0, 1, 2, 3].map((k) => tf.mod(tf.floorDiv(words, tf.scalar(256 ** k, "int32")), tf.scalar(256, "int32")));
    const bytes = tf.concat(byteList, 1).reshape([-1]); // [4W]
    let codes: tf.Tensor;
    if (attrs.bits === 4) {
      const high = tf.floorDiv(bytes, tf.scalar(16, "int32"));
      const low = tf.mod(bytes, tf.scalar(16, "int32"));
      codes = tf.stack([high, low], 1).reshape([-1]); // [8W], element order: high then low nibble
    } else {
      codes = bytes;
    }
    const values = tf.gather(code, codes.slice([0], [attrs.count])); // [count]
    const blocks = absmax.shape[0] as number;
    const padded = tf.pad(values, [[0, blocks * attrs.blockSize - attrs.count]]).reshape([blocks, attrs.blockSize]);
    return padded
      .mul(absmax.reshape([blocks, 1]))
      .reshape([-1])
      .slice([0], [attrs.count]) as tf.Tensor1D;
  });
}
