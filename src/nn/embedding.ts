/**
 * Embedding table: token ids → vectors.
 *
 * Reference: torch.nn.Embedding; weight layout [numEmbeddings, D] as in Hugging Face checkpoints.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { embeddingLookup } from "../kernels/embedding_lookup";

/** Options for {@link Embedding}. */
export interface EmbeddingArgs {
  numEmbeddings: number;
  embeddingDim: number;
  /** Seed of the initialiser. */
  seed: number;
  /** Standard deviation of the normal initialiser. Default 0.02. */
  initStd?: number;
}

export class Embedding extends Module {
  /** [numEmbeddings, D] */
  readonly weight: tf.Variable;
  readonly numEmbeddings: number;

  constructor(args: EmbeddingArgs) {
    super();
    this.numEmbeddings = args.numEmbeddings;
    this.weight = this.parameter(
      "weight",
      tf.randomNormal([args.numEmbeddings, args.embeddingDim], 0, args.initStd ?? 0.02, "float32", args.seed),
    );
  }

  /** ids: [...] int32 → [..., D] */
  apply(ids: tf.Tensor): tf.Tensor {
    if (ids.dtype !== "int32") throw new Error(`Embedding: ids must be int32, got ${ids.dtype}`);
    try {
      return tf.tidy(() => {
        const flat = ids.reshape([-1]); // [N]
        const vectors = embeddingLookup(this.weight as tf.Tensor2D, flat as tf.Tensor1D); // [N, D] (its gradient in one kernel on webgpu)
        return vectors.reshape([...ids.shape, this.weight.shape[1] as number]);
      });
    } catch (error) {
      // The CPU backends check gather indices ("GatherV2: the index value 7 is not in [0, 4]"): say it in the model's terms.
      const match = /index value (-?\d+) is not in/.exec((error as Error).message);
      if (!match) throw error;
      throw new Error(
        `Embedding: token id ${match[1]} is outside the vocabulary of ${this.numEmbeddings} tokens (ids 0..${this.numEmbeddings - 1})`,
      );
    }
  }
}
