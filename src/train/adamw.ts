/**
 * AdamW: Adam with decoupled weight decay; each parameter's step is the
 * `adamwStep` op (src/kernels/adamw/: one fused kernel on backends that
 * implement it, tfjs ops elsewhere).
 *
 * Papers: Kingma & Ba, "Adam" (2015); Loshchilov & Hutter, "Decoupled Weight
 * Decay Regularization" (2019). Reference: torch.optim.AdamW (eps added to √v̂).
 */
import * as tf from "@tensorflow/tfjs";
import { adamwStep } from "../kernels/adamw";

/** Options for {@link AdamW}. */
export interface AdamWArgs {
  /** Step size. Default 1e-3. */
  learningRate?: number;
  /** Decay of the first moment. Default 0.9. */
  beta1?: number;
  /** Decay of the second moment. Default 0.999. */
  beta2?: number;
  /** Added to √v̂. Default 1e-8 (PyTorch's). */
  epsilon?: number;
  /** Decoupled weight decay; 0 gives Adam. Default 0.01 (PyTorch's AdamW). */
  weightDecay?: number;
}

interface Slot {
  m: tf.Tensor;
  v: tf.Tensor;
}

export class AdamW {
  /** Step size; may be changed between steps (learning-rate schedules). */
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly slots = new Map<tf.Variable, Slot>();
  private steps = 0;

  constructor(args: AdamWArgs = {}) {
    this.learningRate = args.learningRate ?? 1e-3;
    this.beta1 = args.beta1 ?? 0.9;
    this.beta2 = args.beta2 ?? 0.999;
    this.epsilon = args.epsilon ?? 1e-8;
    this.weightDecay = args.weightDecay ?? 0.01;
    for (const [name, value, low, high] of [
      ["learningRate", this.learningRate, 0, Infinity],
      ["beta1", this.beta1, 0, 1],
      ["beta2", this.beta2, 0, 1],
    ] as const) {
      if (!(value >= low && value < high)) throw new Error(`AdamW: ${name} must be in [${low}, ${high}), got ${value}`);
    }
  }

  /** Number of steps taken. */
  get iterations(): number {
    return this.steps;
  }

  /** Applies one update from gradients keyed by variable (the gradients are not disposed). */
  applyGradients(gradients: Map<tf.Variable, tf.Tensor>): void {
    this.steps++;
    const biasCorrection1 = 1 - this.beta1 ** this.steps;
    const biasCorrection2 = 1 - this.beta2 ** this.steps;
    const attrs = {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      weightDecay: this.weightDecay,
      biasCorrection1,
      biasCorrection2,
    };
    for (const [variable, grad] of gradients) {
      let slot = this.slots.get(variable);
      if (!slot) {
        slot = { m: tf.keep(tf.zerosLike(variable)), v: tf.keep(tf.zerosLike(variable)) };
        this.slots.set(variable, slot);
      }
      const [param, m, v] = adamwStep(variable, grad, slot.m, slot.v, attrs);
      variable.assign(param);
      param.dispose();
      slot.m.dispose();
      slot.v.dispose();
      slot.m = tf.keep(m);
      slot.v = tf.keep(v);
    }
  }

  /**
   * Computes the loss and its gradients with respect to `variables`, applies
   * one update, and returns the loss (the caller disposes it).
   */
  minimize(loss: () => tf.Scalar, variables: tf.Variable[]): tf.Scalar {
    const { value, grads } = tf.variableGrads(loss, variables);
    const byVariable = new Map<tf.Variable, tf.Tensor>();
    for (const variable of variables) {
      const grad = grads[variable.name];
      if (grad) byVariable.set(variable, grad);
    }
    this.applyGradients(byVariable);
    tf.dispose(Object.values(grads));
    return value;
  }

  /** Frees the moment estimates. */
  dispose(): void {
    for (const slot of this.slots.values()) tf.dispose([slot.m, slot.v]);
    this.slots.clear();
  }
}
