/**
 * The trainable part of BLIP-2 between a frozen image encoder and a frozen
 * LLM: learned queries, the Q-Former with its text side, stage 1's heads
 * (ITC projections and temperature, ITM head, ITG language-model head) and
 * stage 2's projection into the LLM; optionally an InstructBLIP copy of the
 * query path whose queries also read the instruction.
 *
 * Papers: Li et al., "BLIP-2" (2023); Dai et al., "InstructBLIP: Towards
 * General-purpose Vision-Language Models with Instruction Tuning" (2023), §2.3.
 * Reference: salesforce/LAVIS `blip2_qformer.py` (`Blip2Qformer`: `vision_proj`,
 * `text_proj`, `itm_head`, `temp`), `blip2_instruct` (`Qformer(text_Qformer.input_ids,
 * attention_mask=[query_atts, text_atts], query_embeds=…)`); transformers
 * `Blip2ForImageTextRetrieval`, `InstructBlipForConditionalGeneration`.
 * Parameter names follow transformers where it has them (`query_tokens`,
 * `qformer.*`, `vision_projection`, `text_projection`, `itm_head`,
 * `language_projection`); LAVIS's for the rest (`temp`, `cls.predictions.*`).
 */
import * as tf from "@tensorflow/tfjs";
import { tidy } from "../util/tidy";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { LayerNorm } from "../nn/layer_norm";
import { activation } from "../nn/activations";
import { Random } from "../util/random";
import {
  Blip2QFormerWithText,
  resolveBlip2QFormerTextConfig,
  type Blip2QFormerTextConfig,
  type ResolvedBlip2QFormerTextConfig,
} from "./blip2_qformer";
import { itcAttentionMask, itmAttentionMask, itgAttentionMask, itcSimilarity, itcLoss, itmLoss, itgLoss } from "./blip2_losses";

/** The bridge's shape. */
export interface Blip2PretrainingConfig {
  readonly qformer: Blip2QFormerTextConfig;
  /** Learned queries Nq. */
  readonly numQueryTokens: number;
  /** ITC's joint space E. Default 128 (LAVIS: 256). */
  readonly embedDim?: number;
  /** Width of the frozen LLM the queries are projected to. */
  readonly languageHiddenSize: number;
  /** Add the InstructBLIP query path (`instruct.*`). Default false. */
  readonly instructionAware?: boolean;
  readonly seed?: number;
}

export interface ResolvedBlip2PretrainingConfig extends Required<Omit<Blip2PretrainingConfig, "qformer">> {
  readonly qformer: ResolvedBlip2QFormerTextConfig;
}

/** Fills every default of a {@link Blip2PretrainingConfig} once and checks it (idempotent). */
export function resolveBlip2PretrainingConfig(config: Blip2PretrainingConfig): ResolvedBlip2PretrainingConfig {
  const resolved: ResolvedBlip2PretrainingConfig = {
    qformer: resolveBlip2QFormerTextConfig(config.qformer),
    numQueryTokens: config.numQueryTokens,
    embedDim: config.embedDim ?? 128,
    languageHiddenSize: config.languageHiddenSize,
    instructionAware: config.instructionAware ?? false,
    seed: config.seed ?? 0,
  };
  for (const key of ["numQueryTokens", "embedDim", "languageHiddenSize"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] <= 0)
      throw new Error(`BLIP-2 bridge: config.${key} must be a positive integer, got ${JSON.stringify(resolved[key])}`);
  }
  return resolved;
}

/** Text input of the Q-Former: ids [B, T] int32 and padding [B, T] (1 real, 0 padding). */
export interface QFormerText {
  readonly inputIds: tf.Tensor;
  readonly padding: tf.Tensor;
}

/** Learned queries + Q-Former + projection into the LLM: what turns image features into a soft prompt. */
export class Blip2QueryBridge extends Module {
  /** [1, Nq, Dq] */
  readonly queryTokens: tf.Variable;
  readonly qformer: Blip2QFormerWithText;
  readonly languageProjection: Linear;

  readonly qformerConfig: ResolvedBlip2QFormerTextConfig;

  constructor(qformerConfig: Blip2QFormerTextConfig, numQueryTokens: number, languageHiddenSize: number, seed: number) {
    super();
    const config = (this.qformerConfig = resolveBlip2QFormerTextConfig(qformerConfig));
    const random = new Random(seed);
    this.queryTokens = this.parameter(
      "query_tokens",
      tf.randomNormal([1, numQueryTokens, config.hiddenSize], 0, 0.02, "float32", random.nextSeed()),
    );
    this.qformer = this.module("qformer", new Blip2QFormerWithText(config, random.nextSeed()));
    this.languageProjection = this.module(
      "language_projection",
      new Linear({ inFeatures: config.hiddenSize, outFeatures: languageHiddenSize, seed: random.nextSeed() }),
    );
  }

  get numQueries(): number {
    return this.queryTokens.shape[1] as number;
  }

  /**
   * The queries after the Q-Former. image: [B, Tk, Dv]; instruction (InstructBLIP): its tokens
   * join the queries in self-attention (bi-directional mask) → queries [B, Nq, Dq] and,
   * when asked, each cross-attending layer's weights [B, H, Nq, Tk]
   */
  queryOutputs(
    image: tf.Tensor,
    instruction?: QFormerText,
    outputCrossAttentions = false,
  ): { queries: tf.Tensor; crossAttentions?: tf.Tensor[] } {
    const [B] = image.shape;
    const Nq = this.numQueries;
    return tidy<{ queries: tf.Tensor; crossAttentions?: tf.Tensor[] }>(() => {
      const queryEmbeds = this.queryTokens.tile([B, 1, 1]); // [B, Nq, Dq]
      const mask = instruction ? itmAttentionMask(Nq, instruction.padding) : undefined;
      const out = this.qformer.forward({ queryEmbeds, inputIds: instruction?.inputIds, image, mask, outputCrossAttentions });
      const queries = out.lastHiddenState.slice([0, 0, 0], [B, Nq, this.qformerConfig.hiddenSize]); // [B, Nq, Dq]
      return outputCrossAttentions ? { queries, crossAttentions: out.crossAttentions } : { queries };
    });
  }

  /** image: [B, Tk, Dv] → the LLM's soft prompt [B, Nq, Dtext] */
  softPrompt(image: tf.Tensor, instruction?: QFormerText): tf.Tensor {
    return tf.tidy(() => this.languageProjection.apply(this.queryOutputs(image, instruction).queries));
  }
}

/** Stage 1's three losses of one batch. */
export interface Stage1Losses {
  itc: tf.Scalar;
  itm: tf.Scalar;
  itg: tf.Scalar;
}

/** BLIP-2's bridge with stage 1's heads (and the InstructBLIP path when configured). */
export class Blip2ForPretraining extends Blip2QueryBridge {
  readonly visionProjection: Linear;
  readonly textProjection: Linear;
  readonly itmHead: Linear;
  /** ITC temperature τ (a scalar; LAVIS starts at 0.07 and clamps to [0.001, 0.5]). */
  readonly temp: tf.Variable;
  /** ITG head (BERT's `cls.predictions`): dense → GELU → LayerNorm → the word embeddings (tied) + bias. */
  readonly lmTransform: Linear;
  readonly lmNorm: LayerNorm;
  readonly lmBias: tf.Variable;
  /** The InstructBLIP query path (its own queries, Q-Former and projection), when `instructionAware`. */
  readonly instruct: Blip2QueryBridge | undefined;

  readonly config: ResolvedBlip2PretrainingConfig;

  constructor(pretrainingConfig: Blip2PretrainingConfig) {
    const config = resolveBlip2PretrainingConfig(pretrainingConfig);
    super(config.qformer, config.numQueryTokens, config.languageHiddenSize, new Random(config.seed).nextSeed());
    this.config = config;
    const random = new Random(config.seed + 1);
    const Dq = config.qformer.hiddenSize;
    const E = config.embedDim;
    this.visionProjection = this.module(
      "vision_projection",
      new Linear({ inFeatures: Dq, outFeatures: E, seed: random.nextSeed() }),
    );
    this.textProjection = this.module("text_projection", new Linear({ inFeatures: Dq, outFeatures: E, seed: random.nextSeed() }));
    this.itmHead = this.module("itm_head", new Linear({ inFeatures: Dq, outFeatures: 2, seed: random.nextSeed() }));
    this.temp = this.parameter("temp", tf.scalar(0.07));
    this.lmTransform = this.module(
      "cls.predictions.transform.dense",
      new Linear({ inFeatures: Dq, outFeatures: Dq, seed: random.nextSeed() }),
    );
    this.lmNorm = this.module(
      "cls.predictions.transform.LayerNorm",
      new LayerNorm({ dim: Dq, eps: config.qformer.layerNormEps }),
    );
    this.lmBias = this.parameter("cls.predictions.bias", tf.zeros([config.qformer.vocabSize]));
    const instructSeed = random.nextSeed();
    this.instruct = config.instructionAware
      ? this.module(
          "instruct",
          new Blip2QueryBridge(config.qformer, config.numQueryTokens, config.languageHiddenSize, instructSeed),
        )
      : undefined;
  }

  /** The query path a variant uses: BLIP-2's, or InstructBLIP's (instruction-aware). */
  bridge(instructionAware: boolean): Blip2QueryBridge {
    if (!instructionAware) return this;
    if (!this.instruct) throw new Error("BLIP-2: this model has no InstructBLIP path (config.instructionAware is false)");
    return this.instruct;
  }

  /** Keeps τ in LAVIS's range [0.001, 0.5] (call after each optimiser step). */
  clampTemperature(): void {
    tf.tidy(() => this.temp.assign(this.temp.clipByValue(0.001, 0.5)));
  }

  /** Query outputs [B, Nq, Dq] → unit ITC features [B, Nq, E] */
  imageItcFeatures(queries: tf.Tensor): tf.Tensor {
    return tf.tidy(() => unit(this.visionProjection.apply(queries)));
  }

  /** Text outputs [B, T, Dq] → unit ITC feature of the first ([CLS]) token [B, E] */
  textItcFeatures(textHidden: tf.Tensor): tf.Tensor {
    const [B, , Dq] = textHidden.shape;
    return tf.tidy(() => unit(this.textProjection.apply(textHidden.slice([0, 0, 0], [B, 1, Dq]).reshape([B, Dq]))));
  }

  /** Text hidden states [B, T, Dq] → vocabulary logits [B, T, V] (weights tied to the word embeddings). */
  lmLogits(textHidden: tf.Tensor): tf.Tensor {
    const [B, T, Dq] = textHidden.shape;
    return tf.tidy(() => {
      const h = this.lmNorm.apply(activation("gelu")(this.lmTransform.apply(textHidden))); // [B, T, Dq]
      const logits = tf.matMul(h.reshape([B * T, Dq]), this.qformer.wordEmbeddings.weight, false, true).add(this.lmBias); // [B·T, Dq]·[V, Dq]ᵀ → [B·T, V]
      return logits.reshape([B, T, this.config.qformer.vocabSize]);
    });
  }

  /** The ITC similarities [Bi, Bt] of images [Bi, Tk, Dv] and texts (separate passes: the same as the joint pass under the ITC mask). */
  itcSimilarities(image: tf.Tensor, text: QFormerText): tf.Tensor2D {
    return tf.tidy(() => {
      const imageFeatures = this.imageItcFeatures(this.queryOutputs(image).queries); // [Bi, Nq, E]
      const textHidden = this.qformer.forward({
        inputIds: text.inputIds,
        mask: itcAttentionMask(0, text.padding),
      }).lastHiddenState; // [Bt, T, Dq]
      return itcSimilarity(imageFeatures, this.textItcFeatures(textHidden), this.temp);
    });
  }

  /** ITM logits [B, 2] (column 1: match) of image i with text i: one pass under the bi-directional mask, head averaged over the queries. */
  itmLogits(image: tf.Tensor, text: QFormerText): tf.Tensor2D {
    return tf.tidy(() => this.itmForward(image, text, tf.zeros([image.shape[0] as number], "int32")).logits);
  }

  private itmForward(image: tf.Tensor, text: QFormerText, labels: tf.Tensor): { loss: tf.Scalar; logits: tf.Tensor2D } {
    const [B] = image.shape;
    const Nq = this.numQueries;
    const hidden = this.qformer.forward({
      queryEmbeds: this.queryTokens.tile([B, 1, 1]),
      inputIds: text.inputIds,
      image,
      mask: itmAttentionMask(Nq, text.padding),
    }).lastHiddenState; // [B, Nq + T, Dq]
    const queries = hidden.slice([0, 0, 0], [B, Nq, this.config.qformer.hiddenSize]); // [B, Nq, Dq]
    return itmLoss(queries, (x) => this.itmHead.apply(x), labels);
  }

  /**
   * Stage 1's three losses on a batch of B matching (image, text) pairs.
   * itcTargets: [B, B] (multi-positive when texts repeat); negativeTextOf[i]: a
   * text for image i that does not match, negativeImageOf[j]: an image for text j
   * (from {@link sampleHardNegatives} on the ITC similarities).
   */
  stage1Losses(
    image: tf.Tensor,
    text: QFormerText,
    itcTargets: tf.Tensor,
    negativeTextOf: readonly number[],
    negativeImageOf: readonly number[],
  ): Stage1Losses {
    const [B] = image.shape;
    const Nq = this.numQueries;
    const Dq = this.config.qformer.hiddenSize;
    return tidy<Stage1Losses>(() => {
      const queryEmbeds = this.queryTokens.tile([B, 1, 1]); // [B, Nq, Dq]
      // ITC: one pass under the uni-modal mask (queries and text apart).
      const unimodal = this.qformer.forward({
        queryEmbeds,
        inputIds: text.inputIds,
        image,
        mask: itcAttentionMask(Nq, text.padding),
      }).lastHiddenState; // [B, Nq + T, Dq]
      const T = text.inputIds.shape[1] as number;
      const imageFeatures = this.imageItcFeatures(unimodal.slice([0, 0, 0], [B, Nq, Dq])); // [B, Nq, E]
      const textFeatures = this.textItcFeatures(unimodal.slice([0, Nq, 0], [B, T, Dq])); // [B, E]
      const itc = itcLoss(imageFeatures, textFeatures, this.temp, itcTargets);
      // ITM: positives, (image, hard negative text), (hard negative image, text).
      const textIndex = tf.tensor1d([...range(B), ...negativeTextOf, ...range(B)], "int32"); // [3B]
      const imageIndex = tf.tensor1d([...range(B), ...range(B), ...negativeImageOf], "int32"); // [3B]
      const itmText = { inputIds: tf.gather(text.inputIds, textIndex), padding: tf.gather(text.padding, textIndex) };
      const labels = tf.tensor1d([...new Array(B).fill(1), ...new Array(2 * B).fill(0)], "int32");
      const itm = this.itmForward(tf.gather(image, imageIndex), itmText, labels).loss;
      // ITG: the text decoder under the multi-modal causal mask.
      const causal = this.qformer.forward({
        queryEmbeds,
        inputIds: text.inputIds,
        image,
        mask: itgAttentionMask(Nq, text.padding),
      }).lastHiddenState;
      const itg = itgLoss(this.lmLogits(causal.slice([0, Nq, 0], [B, T, Dq])), text.inputIds, text.padding);
      return { itc, itm, itg };
    });
  }
}

function unit(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.div(x.square().sum(-1, true).sqrt().maximum(1e-12)));
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}
