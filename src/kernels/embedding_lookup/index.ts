/**
 * An embedding table's lookup, rows = table[ids], whose backward pass scatters dy back into the table
 * in one kernel: on `webgpu` one WGSL program instead of tfjs's six dispatches (transposes around a
 * segment sum; issue 21: the GPT step's dispatch count). The forward pass is tfjs's gather. Backends
 * without the kernel (`native`, `cpu`) run the composite, tfjs's gather with its own gradient, unchanged.
 *
 * Reference: torch.nn.functional.embedding (its backward, `embedding_dense_backward`).
 */
import * as tf from "@tensorflow/tfjs";
import { defineKernel, hasFusedKernels } from "../registry";
import { embeddingLookupComposite } from "./composite";
import { embeddingGradWebGpu } from "./webgpu";

export { embeddingLookupComposite };

export const EMBEDDING_GRAD_KERNEL = "MllmEmbeddingGrad";

export const EMBEDDING_LOOKUP = defineKernel({
  op: "embeddingLookup",
  summary: "rows of a table [V, D] by ids [N]; gradient (dy [N, D], ids) → d table [V, D] in one kernel",
  composite: embeddingLookupComposite,
  kernels: { [EMBEDDING_GRAD_KERNEL]: { webgpu: embeddingGradWebGpu } },
});

/** table: [V, D], ids: [N] int32 → [N, D]. The ids get no gradient. */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (table.rank !== 2 || ids.rank !== 1)
    throw new Error(`embeddingLookup: expected table [V, D] and ids [N], got [${table.shape}] and [${ids.shape}]`);
  if (ids.dtype !== "int32") throw new Error(`embeddingLookup: ids must be int32, got ${ids.dtype}`);
  if (table.dtype !== "float32" || !hasFusedKernels(EMBEDDING_LOOKUP)) return embeddingLookupComposite(table, ids);
  const tableRows = table.shape[0];
  const fused = tf.customGrad(((weights: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([ids]); // tfjs keeps a saved copy: the caller's ids may be freed before the backward pass
    return {
      value: tf.gather(weights, ids), // [N, D]
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) =>
        tf.engine().runKernel(EMBEDDING_GRAD_KERNEL, { dy, ids: saved[0] }, { tableRows }) as tf.Tensor2D, // [V, D]
    };
  }) as any);
  return fused(table) as tf.Tensor2D;
}
