/** An embedding table's lookup in tfjs ops: what every backend without the op's kernel runs. */
import * as tf from "@tensorflow/tfjs";

/** table: [V, D], ids: [N] int32 → rows [N, D] (tfjs's gather; its gradient scatters dy back with a segment sum). */
export function embeddingLookupComposite(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  return tf.gather(table, ids);
}
