/**
 * Attention masks: which keys each query may see, as an additive bias
 * (0 allowed, −1e9 masked) for the softmax, from causality and padding.
 *
 * Reference: transformers `masking_utils.py` (`causal_mask_function`, `padding_mask_function`).
 */
import * as tf from "@tensorflow/tfjs";

/**
 * A causal mask as an additive bias: 0 where query i may attend to key j,
 * −1e9 where j comes after it. With `keys` > `queries` the queries are the
 * newest positions (query i sits at position keys − queries + i), as when
 * decoding with a KV cache. The one causal-mask builder of the library:
 * {@link attentionMask} uses it too.
 * @returns [Tq, Tk] (Tq = queries, Tk = keys, default Tq)
 */
export function causalMask(queries: number, keys = queries): tf.Tensor2D {
  if (!(Number.isInteger(queries) && queries > 0)) throw new Error(`causalMask: T must be a positive integer, got ${queries}`);
  if (!(Number.isInteger(keys) && keys >= queries))
    throw new Error(`causalMask: keys must be an integer ≥ queries (${queries}), got ${keys}`);
  // Written directly: tf.linalg.bandPart builds it from int32 broadcasts, which run on slow generic paths.
  const past = keys - queries;
  const values = new Float32Array(queries * keys);
  for (let i = 0; i < queries; i++) values.fill(-1e9, i * keys + past + i + 1, (i + 1) * keys); // row i: keys after position past + i are masked
  return tf.tensor2d(values, [queries, keys]);
}

/** What {@link attentionMask} returns. Dispose both tensors (or build it inside `tf.tidy`). */
export interface AttentionMask {
  /** Additive bias: [Tq, Tk] when only causality masks, else [B, 1, Tq, Tk]. Absent when nothing is masked. */
  readonly bias?: tf.Tensor;
  /**
   * [B, 1, Tq, 1]: 1 for query rows that see at least one key, 0 for rows that
   * see none (a left-padding position). Multiply the attention output by it:
   * such rows attend to nothing and output zeros, as PyTorch's SDPA does.
   * Absent when every row sees a key.
   */
  readonly rowsWithKeys?: tf.Tensor;
}

/** Options for {@link attentionMask}. */
export interface AttentionMaskArgs {
  /** Number of queries Tq (the newest positions). */
  queries: number;
  /** Number of keys Tk ≥ Tq (cached positions first, then the queries' own). */
  keys: number;
  /** Query i (absolute position Tk − Tq + i) sees only keys j ≤ its position. */
  causal: boolean;
  /** [B, Tk], 1 for real tokens and 0 for padding (Hugging Face's `attention_mask`). */
  padding?: tf.Tensor;
}

export function attentionMask(args: AttentionMaskArgs): AttentionMask {
  const { queries: Tq, keys: Tk, causal, padding } = args;
  if (Tk < Tq) throw new Error(`attentionMask: keys (${Tk}) must be ≥ queries (${Tq})`);
  if (padding && (padding.rank !== 2 || padding.shape[1] !== Tk)) {
    throw new Error(`attentionMask: padding must be [B, ${Tk}] (one entry per key), got [${padding.shape}]`);
  }
  if (!padding) return causal ? { bias: causalMask(Tq, Tk) } : {};
  return tf.tidy(() => {
    const allowed = causal ? causalMask(Tq, Tk).equal(0).toFloat() : undefined; // [Tq, Tk]: 1 = may attend
    const [B] = padding.shape;
    const keyAllowed = padding.toFloat().reshape([B, 1, 1, Tk]); // [B, 1, 1, Tk]
    const both = allowed ? keyAllowed.mul(allowed) : keyAllowed.tile([1, 1, Tq, 1]); // [B, 1, Tq, Tk]
    const bias = tf.sub(1, both).mul(-1e9);
    const rowsWithKeys = both.max(-1, true); // [B, 1, Tq, 1]
    return { bias, rowsWithKeys };
  });
}

/** Frees a mask's tensors. */
export function disposeMask(mask: AttentionMask): void {
  mask.bias?.dispose();
  mask.rowsWithKeys?.dispose();
}
