/**
 * Multi-head scaled dot-product attention on projections in the merged layout [B, T, H·Dh]: each
 * head's softmax(q·kᵀ/√Dh + mask)·v, merged back to [B, Tq, H·Dh]. On `webgpu` the four per-head
 * products of the forward and backward passes read (and write) the merged layout through strides
 * (`MllmHeadsMatMul`), so the heads' split and merge cost no transpose dispatch (issue 21: the GPT
 * step's dispatch count): 3 dispatches forward (scores, softmax, weights·v) and 5 backward, against 7
 * and 9 with the transposes. Backends without the kernel (`native`, `cpu`) run the composite: the same
 * ops as nn/attention.ts's split, attention and merge.
 *
 * Paper: Vaswani et al., "Attention Is All You Need" (2017), §3.2. Reference: nanoGPT
 * `CausalSelfAttention` (https://github.com/karpathy/nanoGPT/blob/master/model.py).
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { MASKED_SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL } from "../masked_softmax";
import {
  contiguousLayout,
  mergedLayout,
  mergedTransposedLayout,
  transposedLayout,
  type HeadsLayout,
  type HeadsMatMulAttrs,
} from "./attrs";
import { mergedHeadsAttentionComposite } from "./composite";
import { headsMatMulWebGpu } from "./webgpu";

export { mergedHeadsAttentionComposite, type HeadsMatMulAttrs, type HeadsLayout };

export const HEADS_MATMUL_KERNEL = "MllmHeadsMatMul";

export const MERGED_HEADS_ATTENTION = defineKernel({
  op: "mergedHeadsAttention",
  summary: "attention over H heads of [B, T, H·Dh] projections; per-head products through strides (no split/merge transposes)",
  composite: mergedHeadsAttentionComposite,
  kernels: { [HEADS_MATMUL_KERNEL]: { webgpu: headsMatMulWebGpu } },
});

/** out[b, h] = left[b, h] · right[b, h] for each batch index and head, operands and output through their layouts. */
function headsMatMul(left: tf.Tensor, right: tf.Tensor, attrs: HeadsMatMulAttrs): tf.Tensor {
  return tf.engine().runKernel(HEADS_MATMUL_KERNEL, { left, right }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/**
 * q: [B, Tq, H·Dh], k, v: [B, Tk, H·Dh]; mask (additive, optional): [Tq, Tk].
 * @returns [B, Tq, H·Dh], the heads' outputs merged
 */
export function mergedHeadsAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, mask?: tf.Tensor): tf.Tensor {
  if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3)
    throw new Error(`mergedHeadsAttention: expected rank-3 q, k, v [B, T, H·Dh], got [${q.shape}], [${k.shape}], [${v.shape}]`);
  const [B, Tq, D] = q.shape as [number, number, number];
  const Tk = k.shape[1] as number;
  if (!Number.isInteger(heads) || heads <= 0 || D % heads !== 0)
    throw new Error(`mergedHeadsAttention: heads must be a positive integer dividing the width ${D}, got ${heads}`);
  if (k.shape[0] !== B || v.shape[0] !== B || k.shape[2] !== D || v.shape[2] !== D || v.shape[1] !== Tk)
    throw new Error(
      `mergedHeadsAttention: expected k and v [${B}, Tk, ${D}] with one Tk, got k [${k.shape}] and v [${v.shape}] for q [${q.shape}]`,
    );
  const maskFits = !mask || (mask.rank === 2 && mask.shape[0] === Tq && mask.shape[1] === Tk && mask.dtype === "float32");
  const float = q.dtype === "float32" && k.dtype === "float32" && v.dtype === "float32";
  if (!float || !maskFits || !hasFusedKernels(MERGED_HEADS_ATTENTION)) return mergedHeadsAttentionComposite(q, k, v, heads, mask);
  const Dh = D / heads;
  const scale = 1 / Math.sqrt(Dh);
  const product = (rows: number, cols: number, inner: number, left: HeadsLayout, right: HeadsLayout, out: HeadsLayout) => ({
    batch: B,
    heads,
    rows,
    cols,
    inner,
    left,
    right,
    out,
  });
  const queries = mergedLayout(Tq, heads, Dh); // q, dq, the output and its gradient: [B, Tq, H·Dh] as [B, H, Tq, Dh]
  const keys = mergedLayout(Tk, heads, Dh); // k, v, dk, dv: [B, Tk, H·Dh] as [B, H, Tk, Dh]
  const scores = contiguousLayout(heads, Tq, Tk); // scores, weights and their gradients: [B, H, Tq, Tk]
  const scoreShape = [B, heads, Tq, Tk];
  const fused = tf.customGrad(((query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, save: tf.GradSaveFunc) => {
    // q·kᵀ: [B, H, Tq, Dh] · [B, H, Dh, Tk] → [B, H, Tq, Tk]
    const logits = headsMatMul(query, key, {
      ...product(Tq, Tk, Dh, queries, mergedTransposedLayout(Tk, heads, Dh), scores),
      outShape: scoreShape,
    });
    const weights = tf
      .engine()
      .runKernel(MASKED_SOFTMAX_KERNEL, mask ? { x: logits, mask } : { x: logits }, { scale }) as tf.Tensor;
    logits.dispose();
    save([query, key, value, weights]);
    // weights·v: [B, H, Tq, Tk] · [B, H, Tk, Dh] → [B, H, Tq, Dh], written as [B, Tq, H·Dh]
    const output = headsMatMul(weights, value, { ...product(Tq, Dh, Tk, scores, keys, queries), outShape: [B, Tq, D] });
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qSaved, kSaved, vSaved, w] = saved;
        // d weights = dy·vᵀ: [B, H, Tq, Dh] · [B, H, Dh, Tk] → [B, H, Tq, Tk]
        const dWeights = headsMatMul(dy, vSaved, {
          ...product(Tq, Tk, Dh, queries, mergedTransposedLayout(Tk, heads, Dh), scores),
          outShape: scoreShape,
        });
        const dLogits = tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y: w, dy: dWeights }, { scale }) as tf.Tensor;
        dWeights.dispose();
        // dq = dlogits·k: [B, H, Tq, Tk] · [B, H, Tk, Dh] → [B, Tq, H·Dh]
        const dq = headsMatMul(dLogits, kSaved, { ...product(Tq, Dh, Tk, scores, keys, queries), outShape: [B, Tq, D] });
        // dk = dlogitsᵀ·q: [B, H, Tk, Tq] · [B, H, Tq, Dh] → [B, Tk, H·Dh]
        const dk = headsMatMul(dLogits, qSaved, {
          ...product(Tk, Dh, Tq, transposedLayout(heads, Tq, Tk), queries, keys),
          outShape: [B, Tk, D],
        });
        dLogits.dispose();
        // dv = weightsᵀ·dy: [B, H, Tk, Tq] · [B, H, Tq, Dh] → [B, Tk, H·Dh]
        const dv = headsMatMul(w, dy, {
          ...product(Tk, Dh, Tq, transposedLayout(heads, Tq, Tk), queries, keys),
          outShape: [B, Tk, D],
        });
        return [dq, dk, dv];
      },
    };
  }) as any);
  return fused(q, k, v) as tf.Tensor;
}
