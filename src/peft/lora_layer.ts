/**
 * The LoRA update of one linear layer: y = W·x + b + Σ_adapters B·A·dropout(x)·scale,
 * with A [r, in] and B [out, r] trainable and W frozen; scale = α / r
 * (rsLoRA: α / √r). Merging adds B·A·scale into W; unmerging subtracts it.
 *
 * Paper: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021);
 * Kalajdzievski, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA" (rsLoRA, 2023).
 * Reference: peft `src/peft/tuners/lora/layer.py` (`LoraLayer.update_layer`,
 * `reset_lora_parameters`, `Linear.forward`, `merge`, `unmerge`, `get_delta_weight`).
 */
import * as tf from "@tensorflow/tfjs";
import { Linear, type LinearAdapter } from "../nn/linear";
import { Random } from "../util/random";

/**
 * output + update·scale (both [N, out]), with tfjs's gradients of `add` and `mul` (dy; dy·scale, the same
 * kernels, so the same bits) but nothing saved for the backward pass: tfjs's Add and Multiply keep their
 * inputs (Add only for their shapes), two [N, out] activations per adapted layer that PyTorch's
 * `result + lora_B(lora_A(x)) * scaling` does not keep.
 */
function addScaled(output: tf.Tensor2D, update: tf.Tensor2D, scale: number): tf.Tensor2D {
  const sum = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [y, u] = args as tf.Tensor[];
    return { value: y.add(u.mul(scale)), gradFunc: (dy: tf.Tensor) => [dy, dy.mul(scale)] };
  });
  return sum(output, update) as tf.Tensor2D;
}

/** One adapter's settings on one layer. */
export interface LoraAdapterArgs {
  /** Rank r. */
  r: number;
  /** α; the update is scaled by α / r (or α / √r with rsLoRA). */
  alpha: number;
  /** Dropout on the adapter's input while training. Default 0. */
  dropout?: number;
  /** Scale by α / √r. Default false. */
  useRslora?: boolean;
  /**
   * Initialisation: `true` (peft's default: A Kaiming-uniform with a = √5, B zero, so the
   * adapter starts as a no-op), `"gaussian"` (A normal with std 1/r, B zero), or `false`
   * (both random: for tests — the adapter then changes the output).
   */
  init?: boolean | "gaussian";
  seed: number;
}

/** One adapter's weights. */
interface LoraAdapter {
  readonly A: Linear;
  readonly B: Linear;
  readonly scale: number;
  readonly dropout: number;
  readonly random: Random;
}

/** The adapters of one linear layer; installed as the layer's `adapter`. */
export class LoraLayer implements LinearAdapter {
  private readonly adapters = new Map<string, LoraAdapter>();
  /** Adapters that contribute (default: each one added). */
  active = new Set<string>();
  /** Adapters whose update is in the base weight now. */
  readonly merged = new Set<string>();
  /** When true no adapter contributes (the base layer alone). */
  disabled = false;
  /** Dropout applies only while training. */
  training = false;

  constructor(readonly base: Linear) {}

  /** Adapter names on this layer. */
  names(): string[] {
    return [...this.adapters.keys()];
  }

  /** A: [r, in], B: [out, r] of one adapter. */
  weights(name: string): { A: tf.Variable; B: tf.Variable; scale: number } {
    const adapter = this.adapter(name);
    return { A: adapter.A.weight, B: adapter.B.weight, scale: adapter.scale };
  }

  private adapter(name: string): LoraAdapter {
    const adapter = this.adapters.get(name);
    if (!adapter) throw new Error(`LoRA: this layer has no adapter "${name}" (it has: ${this.names().join(", ") || "none"})`);
    return adapter;
  }

  /** Adds an adapter; its weights become the base layer's children `lora_A.<name>` and `lora_B.<name>`. */
  add(name: string, args: LoraAdapterArgs): void {
    if (this.adapters.has(name)) throw new Error(`LoRA: adapter "${name}" already exists on this layer`);
    if (!Number.isInteger(args.r) || args.r <= 0) throw new Error(`LoRA: r must be a positive integer, got ${args.r}`);
    const dropout = args.dropout ?? 0;
    if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA: dropout must be in [0, 1), got ${dropout}`);
    const random = new Random(args.seed);
    const { inFeatures, outFeatures } = this.base;
    const A = new Linear({ inFeatures, outFeatures: args.r, bias: false, seed: random.nextSeed() });
    const B = new Linear({ inFeatures: args.r, outFeatures, bias: false, seed: random.nextSeed() });
    const init = args.init ?? true;
    // torch's kaiming_uniform_(a=√5) on [r, in] is uniform(−1/√in, 1/√in).
    const bound = 1 / Math.sqrt(inFeatures);
    tf.tidy(() => {
      A.weight.assign(
        init === "gaussian"
          ? tf.randomNormal([args.r, inFeatures], 0, 1 / args.r, "float32", random.nextSeed())
          : tf.randomUniform([args.r, inFeatures], -bound, bound, "float32", random.nextSeed()),
      );
      B.weight.assign(
        init === false
          ? tf.randomUniform([outFeatures, args.r], -bound, bound, "float32", random.nextSeed())
          : tf.zeros([outFeatures, args.r]),
      );
    });
    this.base.addModule(`lora_A.${name}`, A);
    this.base.addModule(`lora_B.${name}`, B);
    const scale = args.useRslora ? args.alpha / Math.sqrt(args.r) : args.alpha / args.r;
    this.adapters.set(name, { A, B, scale, dropout, random });
    this.active.add(name);
  }

  /** Removes an adapter and frees its weights (unmerge it first if merged). */
  delete(name: string): void {
    if (this.merged.has(name)) throw new Error(`LoRA: unmerge adapter "${name}" before deleting it`);
    this.detach(name);
  }

  /** Removes every adapter, leaving merged updates in the base weight, and detaches from the base layer. */
  unload(): void {
    for (const name of this.names()) this.detach(name);
    this.merged.clear();
    this.base.adapter = undefined;
  }

  private detach(name: string): void {
    const adapter = this.adapter(name);
    this.base.removeModule(`lora_A.${name}`);
    this.base.removeModule(`lora_B.${name}`);
    adapter.A.dispose();
    adapter.B.dispose();
    this.adapters.delete(name);
    this.active.delete(name);
  }

  /** ΔW = B·A·scale: [out, r] · [r, in] → [out, in] */
  deltaWeight(name: string): tf.Tensor2D {
    const adapter = this.adapter(name);
    return tf.tidy(() => tf.matMul(adapter.B.weight, adapter.A.weight).mul(adapter.scale) as tf.Tensor2D);
  }

  /** input: [N, in], output: [N, out] → output + Σ B(A(dropout(input)))·scale */
  apply(input: tf.Tensor2D, output: tf.Tensor2D): tf.Tensor2D {
    if (this.disabled) return output;
    return tf.tidy(() => {
      let y: tf.Tensor2D = output;
      for (const name of this.active) {
        if (this.merged.has(name)) continue;
        const adapter = this.adapters.get(name)!;
        const x =
          this.training && adapter.dropout > 0 ? tf.dropout(input, adapter.dropout, undefined, adapter.random.nextSeed()) : input;
        // [N, in] · [r, in]ᵀ → [N, r]; · [out, r]ᵀ → [N, out]. Plain products (tfjs's fused one, which Linear uses,
        // would keep its [N, out] output for the backward pass; the values are the same).
        const update = tf.matMul(tf.matMul(x, adapter.A.weight, false, true), adapter.B.weight, false, true) as tf.Tensor2D;
        y = addScaled(y, update, adapter.scale);
      }
      return y;
    });
  }

  /** Adds the adapter's update into the base weight (checking it is finite first, as peft's safe merge). */
  async merge(name: string): Promise<void> {
    if (this.merged.has(name)) return;
    if (this.base.quantizedWeight) throw new Error("LoRA: cannot merge into a quantized weight (dequantize the model first)");
    const delta = this.deltaWeight(name);
    const finite = tf.tidy(() => tf.all(tf.isFinite(delta.add(this.base.weight))));
    const ok = (await finite.data())[0] === 1;
    finite.dispose();
    if (!ok) {
      delta.dispose();
      throw new Error(`LoRA: merging adapter "${name}" would put NaN or Inf into the weight; not merged`);
    }
    tf.tidy(() => this.base.weight.assign(this.base.weight.add(delta)));
    delta.dispose();
    this.merged.add(name);
  }

  /** Subtracts a merged adapter's update from the base weight. */
  unmerge(name: string): void {
    if (!this.merged.has(name)) return;
    tf.tidy(() => this.base.weight.assign(this.base.weight.sub(this.deltaWeight(name))));
    this.merged.delete(name);
  }
}
