/** max |a − b| over two tensors of one shape, read asynchronously (every backend). */
import * as tf from "@tensorflow/tfjs";

export async function maxDifference(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const difference = tf.tidy(() => a.sub(b).abs().max());
  const value = (await difference.data())[0];
  difference.dispose();
  return value;
}
