/**
 * Layer normalisation over the last dimension: (x − mean) / sqrt(var + eps) · γ + β.
 *
 * Paper: Ba, Kiros, Hinton, "Layer Normalization" (2016). Reference: torch.nn.LayerNorm.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { layerNorm } from "../kernels/layer_norm";

/** Options for {@link LayerNorm}. */
export interface LayerNormArgs {
  /** Size of the normalised (last) dimension D. */
  dim: number;
  /** Added to the variance. Default 1e-5 (PyTorch's). */
  eps?: number;
}

export class LayerNorm extends Module {
  /** γ: [D] */
  readonly weight: tf.Variable;
  /** β: [D] */
  readonly bias: tf.Variable;
  readonly eps: number;

  constructor(args: LayerNormArgs) {
    super();
    this.eps = args.eps ?? 1e-5;
    this.weight = this.parameter("weight", tf.ones([args.dim]));
    this.bias = this.parameter("bias", tf.zeros([args.dim]));
  }

  /** x: [..., D] → [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
