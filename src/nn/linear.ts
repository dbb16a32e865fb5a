/**
 * Linear layer y = x·Wᵀ + b, with PyTorch's and Hugging Face's weight layout
 * ([outFeatures, inFeatures]) so checkpoints load without transposes.
 *
 * Reference: torch.nn.Linear (https://pytorch.org/docs/stable/generated/torch.nn.Linear.html).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";

/** Options for {@link Linear}. */
export interface LinearArgs {
  inFeatures: number;
  outFeatures: number;
  /** Add a bias. Default true. */
  bias?: boolean;
  /** Seed of the weight initialiser. Required: every random source is seeded. */
  seed: number;
  /** Standard deviation of the normal initialiser. Default 0.02 (GPT-2's). */
  initStd?: number;
}

export class Linear extends Module {
  /** [outFeatures, inFeatures] */
  readonly weight: tf.Variable;
  /** [outFeatures], or undefined without bias. */
  readonly bias: tf.Variable | undefined;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(args: LinearArgs) {
    super();
    for (const key of ["inFeatures", "outFeatures"] as const) {
      if (!Number.isInteger(args[key]) || args[key] <= 0) throw new Error(`Linear: ${key} must be a positive integer, got ${args[key]}`);
    }
    this.inFeatures = args.inFeatures;
    this.outFeatures = args.outFeatures;
    this.weight = this.parameter("weight", tf.randomNormal([args.outFeatures, args.inFeatures], 0, args.initStd ?? 0.02, "float32", args.seed));
    this.bias = args.bias ?? true ? this.parameter("bias", tf.zeros([args.outFeatures])) : undefined;
  }

  /** x: [..., inFeatures] → [..., outFeatures] */
  apply(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    if (shape[shape.length - 1] !== this.inFeatures) {
      throw new Error(`Linear: expected input [..., ${this.inFeatures}], got [${shape.join(", ")}]`);
    }
    return tf.tidy(() => {
      // Flatten to 2D: tfjs's gradient of a rank-3 × rank-2 matMul fails.
      const flat = x.reshape([-1, this.inFeatures]); // [N, in]
      // One fused kernel for x·Wᵀ + b: [N, in] · [out, in]ᵀ → [N, out]
      const y = tf.fused.matMul({ a: flat, b: this.weight, transposeB: true, bias: this.bias });
      return y.reshape([...shape.slice(0, -1), this.outFeatures]);
    });
  }
}
