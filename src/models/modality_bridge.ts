/**
 * VideoLLaMA's recipe for two more modalities: a small encoder the project
 * trains (IMU windows: imu_encoder.ts; point clouds: point_encoder.ts), a
 * Q-Former bridge (qformer_bridge.ts) whose projected queries are a soft
 * prompt, and the frozen language model, which then answers "what is the
 * person doing?" or "what object is this?".
 *
 * The IMU encoder's tokens already carry their time (its own position
 * embeddings), and a cloud's points have no order, so this bridge has no step
 * positions: the keys are one step of tokens, [B, 1, Tk, D] (IMU) or
 * [B, 1, 1 + N, D] (points: the max-pooled feature first, then every point's).
 *
 * Paper: Zhang et al., "Video-LLaMA" (2023), §2 (the branch recipe); Xu et al.,
 * "PointLLM" (2023) and Moon et al., "AnyMAL" (2023, IMU into an LLM) for the modalities.
 * Not a Hugging Face architecture: model_type `mllm_modality_llm`.
 */
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { LlamaForCausalLM, resolveLlamaConfig, type GenerateOptions, type LlamaConfig, type ResolvedLlamaConfig } from "./llama";
import { resolveBlip2QFormerConfig, type Blip2QFormerConfig, type ResolvedBlip2QFormerConfig } from "./blip2";
import { assembleSoftPrompt, shiftedLanguageModelLoss } from "./blip2_losses";
import { QFormerBridge } from "./qformer_bridge";
import { ImuEncoder, resolveImuEncoderConfig, type ImuEncoderConfig, type ResolvedImuEncoderConfig } from "./imu_encoder";
import {
  PointEncoder,
  resolvePointEncoderConfig,
  type PointEncoderConfig,
  type ResolvedPointEncoderConfig,
} from "./point_encoder";

export const MODALITIES = ["imu", "points"] as const;
export type Modality = (typeof MODALITIES)[number];

/** A bridge for one modality. Defaults are filled by {@link resolveModalityLlmConfig}. */
export interface ModalityLlmConfig {
  /** Which encoder: `"imu"` (needs `imu`) or `"points"` (needs `points`). */
  readonly modality: Modality;
  /** The IMU encoder (modality "imu"). */
  readonly imu?: ImuEncoderConfig;
  /** The point encoder (modality "points"). */
  readonly points?: PointEncoderConfig;
  /** The Q-Former. Defaults: 2 layers, cross-attention in every layer (as VideoLLaMA's branches), reading the encoder's width; the rest BLIP-2's. */
  readonly qformer: Blip2QFormerConfig;
  /** Learned queries Nq. Default 4 (an activity or an object is one short answer). */
  readonly numQueryTokens?: number;
  /** The frozen language model. */
  readonly text: LlamaConfig;
  /** Initialisation seed. Default 0. */
  readonly seed?: number;
}

export interface ResolvedModalityLlmConfig {
  readonly modality: Modality;
  readonly imu?: ResolvedImuEncoderConfig;
  readonly points?: ResolvedPointEncoderConfig;
  readonly qformer: ResolvedBlip2QFormerConfig;
  readonly numQueryTokens: number;
  readonly text: ResolvedLlamaConfig;
  readonly seed: number;
}

/** Fills every default of a {@link ModalityLlmConfig} once and checks it (idempotent). */
export function resolveModalityLlmConfig(config: ModalityLlmConfig): ResolvedModalityLlmConfig {
  if (!MODALITIES.includes(config.modality))
    throw new Error(
      `ModalityLlm: config.modality must be one of ${MODALITIES.join(", ")}, got ${JSON.stringify(config.modality)}`,
    );
  const encoder =
    config.modality === "imu"
      ? { imu: resolveImuEncoderConfig(required(config.imu, "imu")) }
      : { points: resolvePointEncoderConfig(required(config.points, "points")) };
  const width = (encoder.imu ?? encoder.points)!.hiddenSize;
  const resolved: ResolvedModalityLlmConfig = {
    modality: config.modality,
    ...encoder,
    qformer: resolveBlip2QFormerConfig({
      ...config.qformer,
      numLayers: config.qformer.numLayers ?? 2,
      crossAttentionFrequency: config.qformer.crossAttentionFrequency ?? 1,
      encoderHiddenSize: config.qformer.encoderHiddenSize ?? width,
    }),
    numQueryTokens: config.numQueryTokens ?? 4,
    text: resolveLlamaConfig(config.text),
    seed: config.seed ?? 0,
  };
  if (!Number.isInteger(resolved.numQueryTokens) || resolved.numQueryTokens <= 0)
    throw new Error(
      `ModalityLlm: config.numQueryTokens must be a positive integer, got ${JSON.stringify(resolved.numQueryTokens)}`,
    );
  return resolved;

  function required<T>(value: T | undefined, key: Modality): T {
    if (!value) throw new Error(`ModalityLlm: modality "${key}" needs config.${key} (the encoder's config)`);
    return value;
  }
}

/** The bridges for the labs' language backbone (width 128). */
export const MODALITY_LLM_PRESETS = {
  "imu-llm-nano": {
    modality: "imu",
    imu: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4 },
    qformer: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4 },
    numQueryTokens: 4,
  },
  "point-llm-nano": {
    modality: "points",
    points: { hiddenSize: 128, mlpSizes: [64, 128] },
    qformer: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4 },
    numQueryTokens: 4,
  },
} as const;

/** What {@link ModalityLlm.forward} returns. */
export interface ModalityLlmOutput {
  /** [B, Nq + T, V] */
  logits: tf.Tensor;
  /** [B, Nq + T] int32 */
  attentionMask: tf.Tensor;
  /** Next-token loss on the labelled text (when labels are given). */
  loss?: tf.Scalar;
  /** [B, Nq, Dtext] */
  prompt: tf.Tensor;
}

export class ModalityLlm extends Module {
  readonly encoder: ImuEncoder | PointEncoder;
  readonly bridge: QFormerBridge;
  readonly languageModel: LlamaForCausalLM;
  readonly config: ResolvedModalityLlmConfig;

  /** Builds the model; a given language model is used as it is (and frozen). The encoder and bridge train. */
  constructor(options: ModalityLlmConfig, language?: LlamaForCausalLM) {
    super();
    const config = (this.config = resolveModalityLlmConfig({ ...options, text: language?.config ?? options.text }));
    const random = new Random(config.seed);
    const seeds = [random.nextSeed(), random.nextSeed(), random.nextSeed()];
    this.encoder =
      config.modality === "imu"
        ? this.module("imu_encoder", new ImuEncoder({ ...config.imu!, seed: seeds[0] }))
        : this.module("point_encoder", new PointEncoder({ ...config.points!, seed: seeds[0] }));
    this.bridge = this.module(
      "bridge",
      new QFormerBridge({
        qformer: config.qformer,
        numQueryTokens: config.numQueryTokens,
        outputSize: config.text.hiddenSize,
        seed: seeds[1],
      }),
    );
    this.languageModel = this.module("language_model", language ?? new LlamaForCausalLM({ ...config.text, seed: seeds[2] }));
    this.languageModel.setTrainable(false);
  }

  /**
   * The keys the Q-Former reads, as one step. IMU windows [B, T, C] → [B, 1, Tk, D];
   * points [B, N, C] → [B, 1, 1 + N, D] (pooled first)
   */
  features(inputs: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      if (this.encoder instanceof ImuEncoder) return this.encoder.forward(inputs).lastHiddenState.expandDims(1);
      const { pointFeatures, pooled } = this.encoder.forward(inputs);
      return tf.concat([pooled.expandDims(1), pointFeatures], 1).expandDims(1); // [B, 1, 1 + N, D]
    }) as tf.Tensor4D;
  }

  /** inputs: IMU windows [B, T, C] or points [B, N, C] → soft prompt [B, Nq, Dtext] */
  softPrompt(inputs: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.bridge.forward(this.features(inputs)).languageInputs);
  }

  /** The soft prompt, then the text (ids [B, T] int32, mask, labels with −100 where not to learn). */
  forward(args: { inputs: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor; labels?: tf.Tensor }): ModalityLlmOutput {
    if (args.inputIds.rank !== 2 || args.inputIds.dtype !== "int32")
      throw new Error(`ModalityLlm: inputIds must be int32 [B, T], got ${args.inputIds.dtype} [${args.inputIds.shape}]`);
    if (args.inputs.shape[0] !== args.inputIds.shape[0])
      throw new Error(`ModalityLlm: ${args.inputs.shape[0]} inputs but ${args.inputIds.shape[0]} rows of text`);
    return tidy<ModalityLlmOutput>(() => {
      const prompt = this.softPrompt(args.inputs);
      const textEmbeds = this.languageModel.model.embedTokens.apply(args.inputIds); // [B, T, Dtext]
      const soft = assembleSoftPrompt(prompt, textEmbeds, args.attentionMask ?? tf.onesLike(args.inputIds), args.labels);
      const { logits } = this.languageModel.forward({ inputsEmbeds: soft.inputsEmbeds, attentionMask: soft.attentionMask });
      const out: ModalityLlmOutput = { logits, attentionMask: soft.attentionMask, prompt };
      if (soft.labels) out.loss = shiftedLanguageModelLoss(logits, soft.labels);
      return out;
    });
  }

  /** Generates after the soft prompt and a text prompt (left-padded ids [B, T]); returns the new tokens of each row. */
  async generate(
    args: { inputs: tf.Tensor; inputIds: tf.Tensor; attentionMask?: tf.Tensor },
    options: GenerateOptions = {},
  ): Promise<number[][]> {
    const { inputsEmbeds, attentionMask } = tidy(() =>
      assembleSoftPrompt(
        this.softPrompt(args.inputs),
        this.languageModel.model.embedTokens.apply(args.inputIds),
        args.attentionMask ?? tf.onesLike(args.inputIds),
      ),
    );
    try {
      return await this.languageModel.generate(undefined, { ...options, inputsEmbeds, attentionMask });
    } finally {
      inputsEmbeds.dispose();
      attentionMask.dispose();
    }
  }
}
