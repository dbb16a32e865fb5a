/**
 * RMSNorm module: x / √(mean(x²) + eps) · weight (no centring, no bias).
 *
 * Paper: Zhang & Sennrich, "Root Mean Square Layer Normalization" (2019).
 * Reference: transformers `models/llama/modeling_llama.py` `LlamaRMSNorm`.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { rmsNorm } from "../kernels/rms_norm";

/** Options for {@link RMSNorm}. */
export interface RMSNormArgs {
  /** Size of the normalised (last) dimension D. */
  dim: number;
  /** Added to the mean square. Default 1e-6 (Llama checkpoints set 1e-5 or 1e-6 in `rms_norm_eps`). */
  eps?: number;
}

export class RMSNorm extends Module {
  /** [D], initialised to ones. */
  readonly weight: tf.Variable;
  readonly eps: number;

  constructor(args: RMSNormArgs) {
    super();
    this.eps = args.eps ?? 1e-6;
    this.weight = this.parameter("weight", tf.ones([args.dim]));
  }

  /** x: [..., D] → [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
