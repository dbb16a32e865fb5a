/** One AdamW step in plain tfjs ops (every backend). */
import * as tf from "@tensorflow/tfjs";
import type { AdamWStepAttrs } from "./attrs";

/**
 * param, grad, m, v: the same shape → [param', m', v']:
 * m' = β1·m + (1−β1)·g; v' = β2·v + (1−β2)·g²; p' = p − lr·(m'/bc1 / (√(v'/bc2) + eps) + wd·p).
 */
export function adamwStepComposite(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: AdamWStepAttrs,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const m2 = m.mul(attrs.beta1).add(grad.mul(1 - attrs.beta1));
    const v2 = v.mul(attrs.beta2).add(grad.square().mul(1 - attrs.beta2));
    const step = m2
      .div(attrs.biasCorrection1)
      .div(v2.div(attrs.biasCorrection2).sqrt().add(attrs.epsilon))
      .add(param.mul(attrs.weightDecay));
    return [param.sub(step.mul(attrs.learningRate)), m2, v2];
  });
}
