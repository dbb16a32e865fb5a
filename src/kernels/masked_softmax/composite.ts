/** Scaled masked softmax in plain tfjs ops: every backend runs it, autograd differentiates it. */
import * as tf from "@tensorflow/tfjs";

/** x: [..., Tq, Tk]; mask (additive, optional): broadcastable to x → softmax(x·scale + mask) over the last axis. */
export function scaledMaskedSoftmaxComposite(x: tf.Tensor, scale: number, mask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const scaled = x.mul(scale);
    return tf.softmax(mask ? scaled.add(mask) : scaled, -1);
  });
}
