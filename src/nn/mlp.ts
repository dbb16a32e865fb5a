/**
 * The transformer's position-wise feed-forward network: Linear → GELU → Linear.
 *
 * Paper: Vaswani et al. (2017), §3.3; GELU from Hendrycks & Gimpel (2016).
 * Reference: nanoGPT `MLP`.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { Linear } from "./linear";
import { Random } from "../util/random";
import { gelu } from "../kernels/gelu";

export { gelu };

/** Options for {@link MLP}. */
export interface MLPArgs {
  dim: number;
  /** Hidden width. Default 4·dim. */
  hiddenDim?: number;
  seed: number;
}

export class MLP extends Module {
  readonly up: Linear;
  readonly down: Linear;

  constructor(args: MLPArgs) {
    super();
    const random = new Random(args.seed);
    const hidden = args.hiddenDim ?? 4 * args.dim;
    this.up = this.module("up", new Linear({ inFeatures: args.dim, outFeatures: hidden, seed: random.nextSeed() }));
    this.down = this.module("down", new Linear({ inFeatures: hidden, outFeatures: args.dim, seed: random.nextSeed() }));
  }

  /** x: [..., D] → [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.down.apply(gelu(this.up.apply(x))));
  }
}
