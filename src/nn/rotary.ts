/**
 * Rotary position embeddings (RoPE): rotate pairs of query/key features by an
 * angle proportional to the position, so q·k depends on relative position.
 * Hugging Face's layout pairs feature i with feature i + Dh/2 ("rotate_half").
 *
 * Paper: Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021).
 * Reference: transformers `models/llama/modeling_llama.py` (`LlamaRotaryEmbedding`,
 * `rotate_half`, `apply_rotary_pos_emb`) and `modeling_rope_utils.py` (`linear`, `llama3`).
 */
import * as tf from "@tensorflow/tfjs";

/** RoPE settings, as in a config's `rope_parameters` (or the older `rope_theta` + `rope_scaling`). */
export interface RopeConfig {
  /** Base θ of the inverse frequencies. Default 10000. */
  readonly theta: number;
  /** `default`, `linear` (positions divided by `factor`) or `llama3` (Llama 3.1's frequency-dependent scaling). Default `default`. */
  readonly type?: "default" | "linear" | "llama3";
  /** Scaling factor for `linear` and `llama3`. */
  readonly factor?: number;
  /** `llama3` only. */
  readonly lowFreqFactor?: number;
  /** `llama3` only. */
  readonly highFreqFactor?: number;
  /** `llama3` only: the context length the model was trained with. */
  readonly originalMaxPositionEmbeddings?: number;
}

/** Inverse frequencies 1/θ^(2i/Dh), i < Dh/2, in float32 as torch computes them. */
export function inverseFrequencies(headDim: number, rope: RopeConfig): Float32Array {
  if (headDim % 2 !== 0) throw new Error(`rotary: head dimension must be even, got ${headDim}`);
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.fround(rope.theta ** Math.fround((2 * i) / headDim));
  const type = rope.type ?? "default";
  if (type === "linear") {
    for (let i = 0; i < half; i++) out[i] /= rope.factor ?? 1;
  } else if (type === "llama3") {
    const factor = rope.factor ?? 8;
    const low = rope.lowFreqFactor ?? 1;
    const high = rope.highFreqFactor ?? 4;
    const original = rope.originalMaxPositionEmbeddings ?? 8192;
    const lowWavelength = original / low;
    const highWavelength = original / high;
    for (let i = 0; i < half; i++) {
      const wavelength = (2 * Math.PI) / out[i];
      if (wavelength > lowWavelength) out[i] = out[i] / factor;
      else if (wavelength >= highWavelength) {
        const smooth = (original / wavelength - low) / (high - low);
        out[i] = (1 - smooth) * (out[i] / factor) + smooth * out[i];
      }
    }
  } else if (type !== "default") {
    throw new Error(`rotary: unsupported rope_type ${JSON.stringify(type)} (supported: default, linear, llama3)`);
  }
  return out;
}

/**
 * cos and sin tables for the given positions.
 * positions: [B, T] int32 → cos, sin: [B, 1, T, Dh] (broadcast over heads)
 */
export function rotaryTables(positions: tf.Tensor, headDim: number, rope: RopeConfig): { cos: tf.Tensor; sin: tf.Tensor } {
  const inverse = inverseFrequencies(headDim, rope);
  return tf.tidy(() => {
    const [B, T] = positions.shape;
    // angles[b, t, i] = position[b, t] · inverse[i]: [B, T, 1] · [1, Dh/2] → [B, T, Dh/2]
    const angles = positions.toFloat().reshape([B, T, 1]).mul(tf.tensor(inverse, [1, 1, headDim / 2]));
    const both = tf.concat([angles, angles], -1).reshape([B, 1, T, headDim]); // [B, 1, T, Dh]
    return { cos: tf.cos(both), sin: tf.sin(both) };
  });
}

/** [..., Dh] → [..., Dh]: (x1, x2) → (−x2, x1) with x1 the first half. */
export function rotateHalf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const half = (x.shape[x.rank - 1] as number) / 2;
    const [first, second] = tf.split(x, [half, half], -1);
    return tf.concat([second.neg(), first], -1);
  });
}

/** x: [B, H, T, Dh]; cos, sin: [B, 1, T, Dh] → x·cos + rotateHalf(x)·sin, [B, H, T, Dh]. */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(cos).add(rotateHalf(x).mul(sin)));
}
