/**
 * Patch embedding of a vision transformer: a Conv2d with kernel = stride = P,
 * computed as a matmul over flattened patches (the same numbers, and the
 * weight keeps the checkpoint's Conv2d layout [D, C, P, P]).
 *
 * Paper: Dosovitskiy et al., "An Image is Worth 16x16 Words" (ViT, 2020).
 * Reference: transformers `models/clip/modeling_clip.py` `CLIPVisionEmbeddings.patch_embedding`.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";

/** Options for {@link PatchEmbedding}. */
export interface PatchEmbeddingArgs {
  /** Input channels C. Default 3. */
  channels?: number;
  /** Patch side P (kernel and stride). */
  patchSize: number;
  /** Output width D. */
  dim: number;
  /** Add a bias (BLIP-2 has one, CLIP does not). Default false. */
  bias?: boolean;
  seed: number;
}

export class PatchEmbedding extends Module {
  /** [D, C, P, P], Conv2d's layout. */
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | undefined;
  readonly channels: number;
  readonly patchSize: number;
  readonly dim: number;

  constructor(args: PatchEmbeddingArgs) {
    super();
    this.channels = args.channels ?? 3;
    this.patchSize = args.patchSize;
    this.dim = args.dim;
    this.weight = this.parameter(
      "weight",
      tf.randomNormal([args.dim, this.channels, args.patchSize, args.patchSize], 0, 0.02, "float32", args.seed),
    );
    this.bias = args.bias ? this.parameter("bias", tf.zeros([args.dim])) : undefined;
  }

  /** pixels: [B, C, Himg, Wimg] → [B, N, D] with N = (Himg/P)·(Wimg/P), patches in row-major order. */
  apply(pixels: tf.Tensor): tf.Tensor {
    const [B, C, height, width] = pixels.shape;
    const P = this.patchSize;
    if (pixels.rank !== 4 || C !== this.channels || height % P !== 0 || width % P !== 0) {
      throw new Error(
        `PatchEmbedding: expected pixels [B, ${this.channels}, H, W] with H and W multiples of ${P}, got [${pixels.shape}]`,
      );
    }
    const rows = height / P;
    const columns = width / P;
    return tf.tidy(() => {
      const patches = pixels
        .reshape([B, C, rows, P, columns, P]) // [B, C, Gh, P, Gw, P]
        .transpose([0, 2, 4, 1, 3, 5]) // [B, Gh, Gw, C, P, P]
        .reshape([B * rows * columns, C * P * P]); // [B·N, C·P·P]
      // [B·N, C·P·P] · [D, C·P·P]ᵀ → [B·N, D]
      const embedded = tf.fused.matMul({
        a: patches,
        b: this.weight.reshape([this.dim, C * P * P]),
        transposeB: true,
        bias: this.bias,
      });
      return embedded.reshape([B, rows * columns, this.dim]);
    });
  }
}
