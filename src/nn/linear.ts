/**
 * Linear layer y = x·Wᵀ + b, with PyTorch's and Hugging Face's weight layout
 * ([outFeatures, inFeatures]) so checkpoints load without transposes.
 *
 * Two extension points serve parameter-efficient tuning (`src/peft/`):
 * an `adapter` adds its own term to the output (LoRA), and the weight can be
 * swapped for a quantized one that is dequantized on the fly inside the
 * forward pass (QLoRA's NF4).
 *
 * Reference: torch.nn.Linear (https://pytorch.org/docs/stable/generated/torch.nn.Linear.html).
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { linearWithBias } from "../kernels/linear_bias";

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

/** Something that adds to a linear layer's output (LoRA). */
export interface LinearAdapter {
  /** input: [N, in], output: the base output [N, out] → the adapted output [N, out]. */
  apply(input: tf.Tensor2D, output: tf.Tensor2D): tf.Tensor2D;
}

/** A weight held in another form (quantized); `dequantize` gives [out, in] float32 (freed by the caller). */
export interface WeightSource {
  readonly shape: readonly [number, number];
  dequantize(): tf.Tensor2D;
  /** x: [N, in] → x · Wᵀ [N, out] without a float copy of W (forward or backward); when absent, `dequantize` then multiply. */
  matMul?(x: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

export class Linear extends Module {
  private storedWeight: tf.Variable | undefined;
  /** [outFeatures], or undefined without bias. */
  readonly bias: tf.Variable | undefined;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Adds to the output when set (see `src/peft/lora.ts`). */
  adapter: LinearAdapter | undefined;
  private weightSource: WeightSource | undefined;

  constructor(args: LinearArgs) {
    super();
    for (const key of ["inFeatures", "outFeatures"] as const) {
      if (!Number.isInteger(args[key]) || args[key] <= 0)
        throw new Error(`Linear: ${key} must be a positive integer, got ${args[key]}`);
    }
    this.inFeatures = args.inFeatures;
    this.outFeatures = args.outFeatures;
    this.storedWeight = this.parameter(
      "weight",
      tf.randomNormal([args.outFeatures, args.inFeatures], 0, args.initStd ?? 0.02, "float32", args.seed),
    );
    this.bias = (args.bias ?? true) ? this.parameter("bias", tf.zeros([args.outFeatures])) : undefined;
  }

  /** [outFeatures, inFeatures]. Throws when the weight is quantized (see {@link quantizedWeight}). */
  get weight(): tf.Variable {
    if (!this.storedWeight)
      throw new Error(`Linear [${this.outFeatures}×${this.inFeatures}]: the weight is quantized; use dequantizedWeight()`);
    return this.storedWeight;
  }

  /** The quantized form of the weight, when it has one. */
  get quantizedWeight(): WeightSource | undefined {
    return this.weightSource;
  }

  /**
   * The weight as float32 [out, in]: the variable itself, or a fresh dequantized
   * tensor. Call it inside `tf.tidy` (which frees the latter and never a variable).
   */
  dequantizedWeight(): tf.Tensor2D {
    return (this.weightSource ? this.weightSource.dequantize() : this.storedWeight!) as tf.Tensor2D;
  }

  /** Replaces the float weight by a quantized one (the float variable is freed). */
  setQuantizedWeight(source: WeightSource): void {
    if (source.shape[0] !== this.outFeatures || source.shape[1] !== this.inFeatures) {
      throw new Error(`Linear: quantized weight [${source.shape}] does not match [${this.outFeatures}, ${this.inFeatures}]`);
    }
    this.weightSource?.dispose();
    if (this.storedWeight) this.removeParameter("weight");
    this.storedWeight = undefined;
    this.weightSource = source;
  }

  /** x: [..., inFeatures] → [..., outFeatures] */
  apply(x: tf.Tensor): tf.Tensor {
    const shape = x.shape;
    if (shape[shape.length - 1] !== this.inFeatures) {
      throw new Error(`Linear: expected input [..., ${this.inFeatures}], got [${shape.join(", ")}]`);
    }
    return tf.tidy(() => {
      // Flatten to 2D: tfjs's gradient of a rank-3 × rank-2 matMul fails.
      const flat = x.reshape([-1, this.inFeatures]) as tf.Tensor2D; // [N, in]
      let y: tf.Tensor2D;
      if (this.weightSource?.matMul) {
        // The source's own product (QLoRA: the 4-bit weight is never held in float, nor saved for the backward pass).
        y = this.weightSource.matMul(flat); // [N, in] · [out, in]ᵀ → [N, out]
        if (this.bias) y = y.add(this.bias);
      } else if (!this.bias && this.storedWeight && !this.storedWeight.trainable) {
        // A frozen weight (LoRA's base): the plain product, whose gradient computes dx alone when asked and keeps
        // x and W (tfjs's fused product computes dW too, eagerly, and keeps its output). Same kernel values.
        y = tf.matMul(flat, this.storedWeight, false, true); // [N, in] · [out, in]ᵀ → [N, out]
      } else {
        const weight = this.dequantizedWeight(); // a quantized weight is freed when the tidy ends
        // One fused kernel for x·Wᵀ + b: [N, in] · [out, in]ᵀ → [N, out] (with a bias, its gradient in one kernel where the backend has it)
        y = this.bias
          ? linearWithBias(flat, weight, this.bias as tf.Tensor1D)
          : (tf.fused.matMul({ a: flat, b: weight, transposeB: true }) as tf.Tensor2D);
      }
      if (this.adapter) y = this.adapter.apply(flat, y);
      return y.reshape([...shape.slice(0, -1), this.outFeatures]);
    });
  }

  /** The quantized weight, when there is one (a model's `dispose` reaches it through Module.dispose). */
  protected disposeResources(): void {
    this.weightSource?.dispose();
    this.weightSource = undefined;
  }
}
