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
  readonly theta?: number;
  /** `default`, `linear` (positions divided by `factor`) or `llama3` (Llama 3.1's frequency-dependent scaling). Default `default`. */
  readonly type?: "default" | "linear" | "llama3";
  /** Scaling factor for `linear` (default 1) and `llama3` (default 8). */
  readonly factor?: number;
  /** `llama3` only. Default 1. */
  readonly lowFreqFactor?: number;
  /** `llama3` only. Default 4. */
  readonly highFreqFactor?: number;
  /** `llama3` only: the context length the model was trained with. Default 8192. */
  readonly originalMaxPositionEmbeddings?: number;
}

/** A {@link RopeConfig} with every default filled (the scaling fields only where its type uses them). */
export interface ResolvedRopeConfig {
  readonly theta: number;
  readonly type: "default" | "linear" | "llama3";
  readonly factor?: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  readonly originalMaxPositionEmbeddings?: number;
}

const ROPE_TYPES = ["default", "linear", "llama3"];

/** Fills RoPE's defaults once; rejects unknown types (naming the bad value). */
export function resolveRopeConfig(rope: RopeConfig = {}): ResolvedRopeConfig {
  const type = rope.type ?? "default";
  if (!ROPE_TYPES.includes(type))
    throw new Error(`rotary: unsupported rope_type ${JSON.stringify(type)} (supported: ${ROPE_TYPES.join(", ")})`);
  const theta = rope.theta ?? 10000;
  if (!(theta > 0)) throw new Error(`rotary: theta must be positive, got ${theta}`);
  if (type === "default") return { theta, type };
  if (type === "linear") return { theta, type, factor: rope.factor ?? 1 };
  return {
    theta,
    type,
    factor: rope.factor ?? 8,
    lowFreqFactor: rope.lowFreqFactor ?? 1,
    highFreqFactor: rope.highFreqFactor ?? 4,
    originalMaxPositionEmbeddings: rope.originalMaxPositionEmbeddings ?? 8192,
  };
}

/** Inverse frequencies 1/θ^(2i/Dh), i < Dh/2, in float32 as torch computes them. */
export function inverseFrequencies(headDim: number, config: RopeConfig): Float32Array {
  if (headDim % 2 !== 0) throw new Error(`rotary: head dimension must be even, got ${headDim}`);
  const rope = resolveRopeConfig(config);
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = 1 / Math.fround(rope.theta ** Math.fround((2 * i) / headDim));
  if (rope.type === "linear") {
    for (let i = 0; i < half; i++) out[i] /= rope.factor!;
  } else if (rope.type === "llama3") {
    const factor = rope.factor!;
    const low = rope.lowFreqFactor!;
    const high = rope.highFreqFactor!;
    const original = rope.originalMaxPositionEmbeddings!;
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
    const angles = positions
      .toFloat()
      .reshape([B, T, 1])
      .mul(tf.tensor(inverse, [1, 1, headDim / 2]));
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
