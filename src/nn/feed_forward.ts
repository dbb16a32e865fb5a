/**
 * The encoder feed-forward network of CLIP, BLIP-2's ViT and BERT-style
 * towers: fc1 → activation → fc2 (named `fc1`/`fc2` as in their checkpoints).
 *
 * Paper: Vaswani et al. (2017), §3.3. Reference: transformers
 * `models/clip/modeling_clip.py` (`CLIPMLP`), `models/blip_2/modeling_blip_2.py` (`Blip2MLP`).
 * Same computation as nn/mlp.ts (`MLP`), kept separate because `MLP`'s
 * parameter names (`up`, `down`) and fixed GELU are lab 00's.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "./module";
import { Linear } from "./linear";
import { activation } from "./activations";
import { Random } from "../util/random";

export class FeedForward extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  /**
   * @param dim model width D
   * @param hidden inner width
   * @param hiddenAct an {@link activation} name (`gelu`, `quick_gelu`, …)
   * @param seed one seed (split into fc1's and fc2's), or the two seeds themselves
   */
  constructor(dim: number, hidden: number, hiddenAct: string, seed: number | readonly [fc1: number, fc2: number]) {
    super();
    const random = typeof seed === "number" ? new Random(seed) : undefined;
    const [fc1Seed, fc2Seed] = random ? [random.nextSeed(), random.nextSeed()] : (seed as readonly [number, number]);
    this.act = activation(hiddenAct);
    this.fc1 = this.module("fc1", new Linear({ inFeatures: dim, outFeatures: hidden, seed: fc1Seed }));
    this.fc2 = this.module("fc2", new Linear({ inFeatures: hidden, outFeatures: dim, seed: fc2Seed }));
  }

  /** x: [..., D] → [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.apply(this.act(this.fc1.apply(x))));
  }
}
