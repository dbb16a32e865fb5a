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

/** Options for {@link MLP}. */
export interface MLPArgs {
  dim: number;
  /** Hidden width. Default 4·dim. */
  hiddenDim?: number;
  seed: number;
}

/** GELU, tanh approximation (GPT-2's `gelu_new`). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(tf.tanh(inner).add(1));
  });
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
