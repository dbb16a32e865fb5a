/**
 * A dense object-map objective for LLaVA's bridge, trained beside the language-model loss: every image token the LLM
 * reads is asked, through a linear read-out, which colour–shape pairs have their centre in that token's cell of the
 * image. The read-out is dropped when training ends; the checkpoint is LLaVA's as before.
 *
 * Why (docs/lab05-plan.md, "Where grounding stands"): probes of the storyteller read an object's shape from the frozen
 * tower's patches at 0.996 but from the pooled tokens the LLM reads at about 0.5, while colour survives (0.94). The
 * language-model loss alone, even with dense object listings, did not teach the bridge to keep the shape; this asks the
 * bridge for it directly, at the place of each object, so the shape reaches the token the LLM attends to when it names
 * that object. Lab 02 measured image-level presence objectives before (`llava_presence.ts`: one multi-label answer per
 * image through the maximum over tokens, as a stage before stage 1 and as an auxiliary beside stage 2,
 * `bench/llava_presence_auxiliary.js`); the projector surfaced presence in some token and the LLM did not use it. Here
 * the targets are per token, at the object's own cell of the grid the LLM reads (after the pooling), so the shape sits
 * in the token that stands for the object's place.
 *
 * Papers: Lee et al., "Deeply-Supervised Nets" (AISTATS 2015), auxiliary losses on intermediate features; Wan et al.,
 * "LocCa: Visual Pretraining with Location-aware Captioners" (NeurIPS 2024), region-level targets from annotations;
 * Li et al., "BLIP-2" (ICML 2023), direct objectives for the bridge.
 * Reference: salesforce/LAVIS `blip2_qformer.py` (a bridge taught by losses of its own beside the language one).
 */
import * as tf from "@tensorflow/tfjs";
import type { SceneObject } from "../data/scene";
import { Random } from "../util/random";
import { PRESENCE_PAIRS, presencePairIndex } from "./llava_presence";

/**
 * An object of a frame as the targets need it: what it is and where its centre is (pixels of the canvas). The
 * positions are optional in the type because story annotations may lack them; the targets refuse an object without.
 */
export type MappedObject = Pick<SceneObject, "color" | "shape"> & { readonly x?: number; readonly y?: number };

/** Target of every pair of every token of an image without annotations (a domain image among scenes): no loss. */
export const UNANNOTATED = -1;

/**
 * The object map of each image: for every cell of the `grid`×`grid` token grid (row-major, as the image tokens are),
 * 1 for each colour–shape pair ({@link PRESENCE_PAIRS}) whose object has its centre in the cell, 0 for the others;
 * an image given as `undefined` (no annotation) gets {@link UNANNOTATED} everywhere, which the loss skips.
 * → [Bimg, Nimg = grid², pairs]
 * @param canvas the images' side in pixels (the objects' coordinates)
 */
export function objectMapTargets(
  images: readonly (readonly MappedObject[] | undefined)[],
  grid: number,
  canvas: number,
): tf.Tensor3D {
  if (!(Number.isInteger(grid) && grid > 0)) throw new Error(`objectMapTargets: grid must be a positive integer, got ${grid}`);
  if (!(canvas > 0)) throw new Error(`objectMapTargets: canvas must be a positive number of pixels, got ${canvas}`);
  const pairs = PRESENCE_PAIRS.length;
  const cells = grid * grid;
  const values = new Float32Array(images.length * cells * pairs);
  images.forEach((objects, image) => {
    if (objects === undefined) {
      values.fill(UNANNOTATED, image * cells * pairs, (image + 1) * cells * pairs);
      return;
    }
    for (const object of objects) {
      const { x, y } = object;
      if (x === undefined || y === undefined || !(x >= 0 && x <= canvas && y >= 0 && y <= canvas))
        throw new Error(
          `objectMapTargets: image ${image} has a ${object.color} ${object.shape} at (${x}, ${y}); expected a centre inside the ${canvas}×${canvas} canvas`,
        );
      const column = Math.min(grid - 1, Math.floor((x * grid) / canvas));
      const row = Math.min(grid - 1, Math.floor((y * grid) / canvas));
      const pair = presencePairIndex(object, "objectMapTargets");
      values[(image * cells + row * grid + column) * pairs + pair] = 1;
    }
  });
  return tf.tensor3d(values, [images.length, cells, pairs]);
}

/** The side of the square token grid that `imageTokens` tokens per image make (16 → 4); throws unless square. */
export function tokenGridSide(imageTokens: number): number {
  const side = Math.round(Math.sqrt(imageTokens));
  if (!(Number.isInteger(imageTokens) && imageTokens > 0 && side * side === imageTokens))
    throw new Error(`object map: ${imageTokens} image tokens per image make no square grid (the class token must be dropped)`);
  return side;
}

/** The objective's settings (`StorytellerPlan.objectMap`; absent: off). */
export interface ObjectMapObjective {
  /** Weight of the object-map loss added to the language-model loss. */
  readonly weight: number;
}

/** Throws, quoting the value, unless `objective` is usable. */
export function checkObjectMapObjective(objective: ObjectMapObjective): void {
  if (!(objective.weight > 0 && Number.isFinite(objective.weight)))
    throw new Error(`object map: weight must be a positive number, got ${String(objective.weight)}`);
}

/**
 * The linear read-out of the image tokens: one logit per colour–shape pair per token. Its bias starts at −5, about the
 * log-odds of a pair centred in a given cell of the storyteller's 4×4 grid (2–3 objects in 16 cells × 30 pairs), so the
 * first steps do not spend themselves on the prior (on LLaVA's 8×8 grid the prior is nearer −6.6; the bias learns it).
 */
export class ObjectMapHead {
  /** [Dtext, pairs] */
  readonly weight: tf.Variable;
  /** [pairs] */
  readonly bias: tf.Variable;

  constructor(
    readonly width: number,
    seed: number,
  ) {
    if (!(Number.isInteger(width) && width > 0)) throw new Error(`ObjectMapHead: width must be a positive integer, got ${width}`);
    const weightSeed = new Random(seed).nextSeed();
    [this.weight, this.bias] = tf.tidy(() => [
      // tidy frees the initial values; the variables are kept
      tf.variable(tf.randomNormal([width, PRESENCE_PAIRS.length], 0, 1 / Math.sqrt(width), "float32", weightSeed)),
      tf.variable(tf.fill([PRESENCE_PAIRS.length], -5)),
    ]);
  }

  get variables(): tf.Variable[] {
    return [this.weight, this.bias];
  }

  /** tokens: [Bimg, Nimg, Dtext] → logits [Bimg, Nimg, pairs] */
  logits(tokens: tf.Tensor): tf.Tensor3D {
    if (tokens.rank !== 3 || tokens.shape[2] !== this.width)
      throw new Error(`ObjectMapHead: tokens must be [Bimg, Nimg, ${this.width}], got [${tokens.shape}]`);
    return tf.tidy(() => {
      const [B, N, D] = tokens.shape;
      // every token a row: [Bimg·Nimg, D] · [D, pairs]
      return tf
        .matMul(tokens.reshape([B * N, D]), this.weight)
        .add(this.bias)
        .reshape([B, N, PRESENCE_PAIRS.length]) as tf.Tensor3D;
    });
  }

  /**
   * Binary cross-entropy of every pair of every token against `targets` ({@link objectMapTargets}), summed over the
   * pairs and averaged over the annotated tokens (0 when none is): in a batch that mixes annotated and unannotated
   * images, each annotated image weighs more the fewer there are. tokens: [Bimg, Nimg, Dtext], targets: [Bimg, Nimg,
   * pairs] → scalar
   */
  loss(tokens: tf.Tensor, targets: tf.Tensor): tf.Scalar {
    if (
      targets.rank !== 3 ||
      targets.shape[0] !== tokens.shape[0] ||
      targets.shape[1] !== tokens.shape[1] ||
      targets.shape[2] !== PRESENCE_PAIRS.length
    )
      throw new Error(
        `ObjectMapHead: targets [${targets.shape}] do not match the tokens [${tokens.shape}] (expected [Bimg, Nimg, ${PRESENCE_PAIRS.length}])`,
      );
    return tf.tidy(() => {
      const annotated = targets.greaterEqual(0).toFloat(); // [Bimg, Nimg, pairs]: 0 on unannotated images
      const perPair = tf.losses.sigmoidCrossEntropy(targets.maximum(0), this.logits(tokens), undefined, 0, tf.Reduction.NONE);
      const tokenCount = annotated.max(-1).sum(); // annotated tokens
      return perPair.mul(annotated).sum().div(tokenCount.maximum(1)) as tf.Scalar;
    });
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}
