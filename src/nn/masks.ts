/**
 * Attention masks: which keys each query may see, as an additive bias
 * (0 allowed, −1e9 masked) for the softmax, from causality, padding and, for
 * conversations packed after a shared prefix, branches.
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
  /**
   * [B, T] int32 (no cache: Tq = Tk = T), several conversations packed after one shared prefix ({@link branchMask}):
   * 0 for the shared prefix, k ≥ 1 for the tokens of branch k. A query sees a key only when the key is in the prefix or
   * in the query's own branch (and causality and padding allow it). Default none (one sequence per row).
   */
  branches?: tf.Tensor;
}

export function attentionMask(args: AttentionMaskArgs): AttentionMask {
  const { queries: Tq, keys: Tk, causal, padding, branches } = args;
  if (Tk < Tq) throw new Error(`attentionMask: keys (${Tk}) must be ≥ queries (${Tq})`);
  if (padding && (padding.rank !== 2 || padding.shape[1] !== Tk)) {
    throw new Error(`attentionMask: padding must be [B, ${Tk}] (one entry per key), got [${padding.shape}]`);
  }
  if (branches) {
    if (Tq !== Tk) throw new Error(`attentionMask: branches need queries = keys (no cache), got ${Tq} queries and ${Tk} keys`);
    if (branches.rank !== 2 || branches.shape[1] !== Tk || branches.dtype !== "int32")
      throw new Error(`attentionMask: branches must be int32 [B, ${Tk}], got ${branches.dtype} [${branches.shape}]`);
    if (padding && padding.shape[0] !== branches.shape[0])
      throw new Error(`attentionMask: padding has ${padding.shape[0]} rows but branches ${branches.shape[0]}`);
  }
  if (!padding && !branches) return causal ? { bias: causalMask(Tq, Tk) } : {};
  return tf.tidy(() => {
    const allowed = causal ? causalMask(Tq, Tk).equal(0).toFloat() : undefined; // [Tq, Tk]: 1 = may attend
    const B = (padding ?? branches)!.shape[0];
    const keyAllowed = padding ? padding.toFloat().reshape([B, 1, 1, Tk]) : tf.ones([B, 1, 1, Tk]); // [B, 1, 1, Tk]
    const unbranched = allowed ? keyAllowed.mul(allowed) : keyAllowed.tile([1, 1, Tq, 1]); // [B, 1, Tq, Tk]
    const both = branches ? unbranched.mul(branchMask(branches)) : unbranched; // [B, 1, Tq, Tk]
    const bias = tf.sub(1, both).mul(-1e9);
    const rowsWithKeys = both.max(-1, true); // [B, 1, Tq, 1]
    return { bias, rowsWithKeys };
  });
}

/**
 * Which keys each query's branch lets it see, for conversations packed after one shared prefix (tree attention, as in
 * shared-prefix packing): a key in the prefix (branch 0) or in the query's own branch. Causality is not applied here.
 * branches: [B, T] int32 → [B, 1, T, T] float, 1 = may attend.
 */
export function branchMask(branches: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, T] = branches.shape;
    // Float arithmetic on the integer ids rather than int32 and bool comparisons: the same 0/1 values, on float kernels
    // every backend has natively (the native backend's comparisons of [B, 1, T, T] fall back to tfjs's generic
    // broadcasting loops: 0.26 s of a llava-robust step of 1.58 s, bench/llava_split_step.js).
    const ids = branches.toFloat();
    const query = ids.reshape([B, 1, T, 1]); // [B, 1, T, 1]
    const key = ids.reshape([B, 1, 1, T]); // [B, 1, 1, T]
    const sameBranch = tf.sub(1, tf.minimum(tf.abs(key.sub(query)), 1)); // [B, 1, T, T]: 1 where the ids are equal
    const inPrefix = tf.sub(1, tf.minimum(tf.abs(key), 1)); // [B, 1, 1, T]: 1 where the key's id is 0
    return tf.maximum(sameBranch, inPrefix) as tf.Tensor4D; // [B, 1, T, T]: either
  });
}

/** Frees a mask's tensors. */
export function disposeMask(mask: AttentionMask): void {
  mask.bias?.dispose();
  mask.rowsWithKeys?.dispose();
}
