/**
 * Activation functions by their Hugging Face names (`hidden_act` in a config).
 *
 * Reference: transformers `activations.py` (`ACT2FN`).
 * - `gelu`: exact, x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (BERT, BLIP-2, LLaVA's projector)
 * - `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation (GPT-2), fused on the native backend
 * - `quick_gelu`: x·σ(1.702·x) (OpenAI CLIP)
 * - `silu` / `swish`: x·σ(x) (Llama's SwiGLU)
 * - `relu`
 */
import * as tf from "@tensorflow/tfjs";
import { gelu as geluTanh } from "../kernels/gelu";

export type ActivationName = "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "quick_gelu" | "silu" | "swish" | "relu";

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
export function geluExact(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)));
}

/** quick_gelu: x·σ(1.702·x). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x.mul(1.702))));
}

/** silu: x·σ(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x)));
}

const ACTIVATIONS: Record<ActivationName, (x: tf.Tensor) => tf.Tensor> = {
  gelu: geluExact,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  gelu_fast: geluTanh,
  quick_gelu: quickGelu,
  silu,
  swish: silu,
  relu: (x) => tf.relu(x),
};

/** The activation named `name` (a config's `hidden_act`); an unknown name is an error that lists the known ones. */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  const fn = ACTIVATIONS[name as ActivationName];
  if (!fn)
    throw new Error(`activation: unknown hidden_act ${JSON.stringify(name)} (known: ${Object.keys(ACTIVATIONS).join(", ")})`);
  return fn;
}
