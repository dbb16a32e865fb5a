/**
 * Llama-family causal language model: token embeddings, pre-norm decoder
 * layers (RMSNorm → grouped-query self-attention with rotary positions →
 * RMSNorm → SwiGLU MLP), a final RMSNorm and a linear head (tied or not) —
 * the architecture of Llama 2/3, SmolLM2, TinyLlama, Mistral (without sliding
 * windows) and the language model inside LLaVA and our BLIP-2.
 *
 * Papers: Touvron et al., "LLaMA" (2023) and "Llama 2" (2023); Ainslie et al.,
 * "GQA" (2023); Shazeer, "GLU Variants Improve Transformer" (2020).
 * Reference: transformers `models/llama/modeling_llama.py` (`LlamaForCausalLM`);
 * nanoVLM `models/language_model.py`. Parameter names are Hugging Face's, so
 * a checkpoint's keys load as they are.
 */
import { checkPromptNotEmpty, checkTokenIds, validateGenerateOptions } from "./input_validation";
import * as tf from "@tensorflow/tfjs";
import { Module } from "../nn/module";
import { Linear } from "../nn/linear";
import { Embedding } from "../nn/embedding";
import { RMSNorm } from "../nn/rms_norm";
import { activation } from "../nn/activations";
import { scaledDotProductAttention, repeatKeyValue, splitHeads, mergeHeads } from "../nn/attention";
import { attentionMask, type AttentionMask } from "../nn/masks";
import { rotaryTables, applyRotary, resolveRopeConfig, type RopeConfig, type ResolvedRopeConfig } from "../nn/rotary";
import { KVCache } from "../nn/kv_cache";
import { Random } from "../util/random";
import { tidy } from "../util/tidy";
import { sampleToken, type SamplingOptions } from "./sampling";
import {
  hasLogitsProcessors,
  processLogits,
  validateLogitsProcessorOptions,
  type LogitsProcessorOptions,
} from "./logits_processors";
import { beamSearch, validateBeamSearchOptions, type BeamStep, type EarlyStopping } from "./beam_search";

/** A Llama model's configuration (Hugging Face's `LlamaConfig`, camel-cased). Defaults are filled by {@link resolveLlamaConfig}. */
export interface LlamaConfig {
  /** Vocabulary size V. */
  readonly vocabSize: number;
  /** Model width D. */
  readonly hiddenSize: number;
  /** SwiGLU hidden width. */
  readonly intermediateSize: number;
  /** Decoder layers. */
  readonly numLayers: number;
  /** Query heads H. */
  readonly numHeads: number;
  /** Key/value heads Hkv; H/Hkv query heads share one (GQA; 1 = multi-query). Default H (transformers' default). */
  readonly numKeyValueHeads?: number;
  /** Per-head width Dh. Default D / H. */
  readonly headDim?: number;
  /** RMSNorm epsilon. Default 1e-6 (transformers' `LlamaConfig`). */
  readonly rmsNormEps?: number;
  /** Rotary settings. Default θ = 10000, no scaling (see {@link resolveRopeConfig}). */
  readonly rope?: RopeConfig;
  /** The head reuses the embedding matrix. Default false. */
  readonly tieWordEmbeddings?: boolean;
  /** Bias in q/k/v/o projections. Default false. */
  readonly attentionBias?: boolean;
  /** Bias in the MLP. Default false. */
  readonly mlpBias?: boolean;
  /** MLP gate activation. Default `silu`. */
  readonly hiddenAct?: string;
  /** Longest sequence the model was trained for (written to config.json; positions are rotary, so not enforced). Default 2048. */
  readonly maxPositionEmbeddings?: number;
  /** Token ids that end generation. Default none. */
  readonly eosTokenIds?: readonly number[];
  /** Padding id written after a row has stopped. Default none (config.json's null): {@link LlamaForCausalLM.generate} then writes 0. */
  readonly padTokenId?: number | null;
  /** Seed of the initialisers. Default 0. */
  readonly seed?: number;
}

/** A {@link LlamaConfig} with every default filled: what the modules, the reader and the writer use. */
export interface ResolvedLlamaConfig extends Required<Omit<LlamaConfig, "rope" | "padTokenId">> {
  readonly rope: ResolvedRopeConfig;
  readonly padTokenId: number | null;
}

/** Fills every default of a {@link LlamaConfig} once and checks the sizes (idempotent). */
export function resolveLlamaConfig(config: LlamaConfig): ResolvedLlamaConfig {
  for (const key of ["vocabSize", "hiddenSize", "intermediateSize", "numLayers", "numHeads"] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0)
      throw new Error(`Llama: config.${key} must be a positive integer, got ${config[key]}`);
  }
  const H = config.numHeads;
  const Hkv = config.numKeyValueHeads ?? H;
  if (!Number.isInteger(Hkv) || Hkv <= 0 || H % Hkv !== 0)
    throw new Error(`Llama: numKeyValueHeads (${Hkv}) must divide numHeads (${H})`);
  const Dh = config.headDim ?? config.hiddenSize / H;
  if (!Number.isInteger(Dh) || Dh % 2 !== 0)
    throw new Error(`Llama: head dimension must be an even integer, got ${Dh} (hiddenSize ${config.hiddenSize} / numHeads ${H})`);
  return {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numLayers: config.numLayers,
    numHeads: H,
    numKeyValueHeads: Hkv,
    headDim: Dh,
    rmsNormEps: config.rmsNormEps ?? 1e-6,
    rope: resolveRopeConfig(config.rope),
    tieWordEmbeddings: config.tieWordEmbeddings ?? false,
    attentionBias: config.attentionBias ?? false,
    mlpBias: config.mlpBias ?? false,
    hiddenAct: config.hiddenAct ?? "silu",
    maxPositionEmbeddings: config.maxPositionEmbeddings ?? 2048,
    eosTokenIds: config.eosTokenIds ?? [],
    padTokenId: config.padTokenId ?? null,
    seed: config.seed ?? 0,
  };
}

/** Named tiny sizes (parameter counts at V = 512). */
export const LLAMA_PRESETS = {
  /** ≈ 0.1M parameters: tests and the quickest labs. */
  "llama-pico": { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKeyValueHeads: 2 },
  /** ≈ 0.9M parameters: the labs' language model. */
  "llama-nano": { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKeyValueHeads: 2 },
  /** ≈ 103M parameters: benchmarks of PEFT memory (V = 32000). */
  "llama-100m": { hiddenSize: 768, intermediateSize: 2048, numLayers: 12, numHeads: 12, numKeyValueHeads: 4 },
} as const;

/** Grouped-query self-attention with rotary positions. HF: `LlamaAttention`. */
export class LlamaAttention extends Module {
  readonly queryProjection: Linear;
  readonly keyProjection: Linear;
  readonly valueProjection: Linear;
  readonly outputProjection: Linear;

  private readonly heads: number;
  private readonly keyValueHeads: number;

  constructor(config: ResolvedLlamaConfig, seed: number) {
    super();
    const { hiddenSize: D, numHeads: H, numKeyValueHeads: Hkv, headDim: Dh } = config;
    this.heads = H;
    this.keyValueHeads = Hkv;
    const random = new Random(seed);
    const linear = (inFeatures: number, outFeatures: number) =>
      new Linear({ inFeatures, outFeatures, bias: config.attentionBias, seed: random.nextSeed() });
    this.queryProjection = this.module("q_proj", linear(D, H * Dh));
    this.keyProjection = this.module("k_proj", linear(D, Hkv * Dh));
    this.valueProjection = this.module("v_proj", linear(D, Hkv * Dh));
    this.outputProjection = this.module("o_proj", linear(H * Dh, D));
  }

  /**
   * x: [B, T, D]; rope cos/sin: [B, 1, T, Dh]; mask from {@link attentionMask}
   * (over Tk = cached + T keys); cache: appended to when given.
   * @returns [B, T, D]
   */
  apply(
    x: tf.Tensor,
    rope: { cos: tf.Tensor; sin: tf.Tensor },
    mask: AttentionMask,
    cache?: { cache: KVCache; layer: number },
  ): tf.Tensor {
    const { heads: H, keyValueHeads: Hkv } = this;
    return tf.tidy(() => {
      const q = applyRotary(splitHeads(this.queryProjection.apply(x), H), rope.cos, rope.sin); // [B, H, T, Dh]
      let k = applyRotary(splitHeads(this.keyProjection.apply(x), Hkv), rope.cos, rope.sin); // [B, Hkv, T, Dh]
      let v = splitHeads(this.valueProjection.apply(x), Hkv); // [B, Hkv, T, Dh]
      if (cache) ({ key: k, value: v } = cache.cache.update(cache.layer, k, v)); // [B, Hkv, Tk, Dh]
      const { output } = scaledDotProductAttention(q, repeatKeyValue(k, H / Hkv), repeatKeyValue(v, H / Hkv), mask.bias); // [B, H, T, Dh]
      const attended = mask.rowsWithKeys ? output.mul(mask.rowsWithKeys) : output; // rows that see no key output 0
      return this.outputProjection.apply(mergeHeads(attended)); // [B, T, H·Dh] → [B, T, D]
    });
  }
}

/** SwiGLU feed-forward: down(act(gate(x)) · up(x)). HF: `LlamaMLP`. */
export class LlamaMLP extends Module {
  readonly gateProjection: Linear;
  readonly upProjection: Linear;
  readonly downProjection: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(D: number, hidden: number, bias: boolean, hiddenAct: string, seed: number) {
    super();
    const random = new Random(seed);
    this.gateProjection = this.module(
      "gate_proj",
      new Linear({ inFeatures: D, outFeatures: hidden, bias, seed: random.nextSeed() }),
    );
    this.upProjection = this.module("up_proj", new Linear({ inFeatures: D, outFeatures: hidden, bias, seed: random.nextSeed() }));
    this.downProjection = this.module(
      "down_proj",
      new Linear({ inFeatures: hidden, outFeatures: D, bias, seed: random.nextSeed() }),
    );
    this.act = activation(hiddenAct);
  }

  /** x: [..., D] → [..., D] */
  apply(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.downProjection.apply(this.act(this.gateProjection.apply(x)).mul(this.upProjection.apply(x))));
  }
}

/** One pre-norm decoder layer. HF: `LlamaDecoderLayer`. */
export class LlamaDecoderLayer extends Module {
  readonly inputNorm: RMSNorm;
  readonly selfAttention: LlamaAttention;
  readonly postAttentionNorm: RMSNorm;
  readonly mlp: LlamaMLP;

  constructor(config: ResolvedLlamaConfig, seed: number) {
    super();
    const random = new Random(seed);
    const { hiddenSize: D, rmsNormEps: eps } = config;
    this.selfAttention = this.module("self_attn", new LlamaAttention(config, random.nextSeed()));
    this.mlp = this.module("mlp", new LlamaMLP(D, config.intermediateSize, config.mlpBias, config.hiddenAct, random.nextSeed()));
    this.inputNorm = this.module("input_layernorm", new RMSNorm({ dim: D, eps }));
    this.postAttentionNorm = this.module("post_attention_layernorm", new RMSNorm({ dim: D, eps }));
  }

  /** x: [B, T, D] → [B, T, D] */
  apply(
    x: tf.Tensor,
    rope: { cos: tf.Tensor; sin: tf.Tensor },
    mask: AttentionMask,
    cache?: { cache: KVCache; layer: number },
  ): tf.Tensor {
    return tf.tidy(() => {
      const h = x.add(this.selfAttention.apply(this.inputNorm.apply(x), rope, mask, cache));
      return h.add(this.mlp.apply(this.postAttentionNorm.apply(h)));
    });
  }
}

/** Inputs of {@link LlamaModel.forward} and {@link LlamaForCausalLM.forward}. */
export interface LlamaInputs {
  /** [B, T] int32 token ids (or give `inputsEmbeds`). */
  inputIds?: tf.Tensor;
  /** [B, T, D] input embeddings, e.g. text with image features merged in. */
  inputsEmbeds?: tf.Tensor;
  /** [B, Tpast + T], 1 for real tokens, 0 for padding. Default all ones. */
  attentionMask?: tf.Tensor;
  /** [B, T] int32 rotary positions. Default Tpast … Tpast + T − 1 (as transformers' forward). */
  positionIds?: tf.Tensor;
  /**
   * [B, T] int32, training only (no cache): conversations packed after one shared prefix, 0 for the prefix and k ≥ 1
   * for branch k, each branch seeing the prefix and itself (`branchMask` in nn/masks.ts). Give the branches'
   * `positionIds` too (each continues the prefix's), so that every branch computes what it would alone. Default none.
   */
  branchIds?: tf.Tensor;
  /** Cache to read and extend (incremental decoding). */
  cache?: KVCache;
  /** Also return the hidden states: the embeddings, every layer's output, the last one after the final norm. */
  outputHiddenStates?: boolean;
}

/** What {@link LlamaModel.forward} returns. */
export interface LlamaModelOutput {
  /** [B, T, D], after the final norm. */
  lastHiddenState: tf.Tensor;
  /** With `outputHiddenStates`: the embeddings, then each layer's output, the last one after the final norm (numLayers + 1 of [B, T, D]). */
  hiddenStates?: tf.Tensor[];
}

/** What {@link LlamaForCausalLM.forward} returns. */
export interface CausalLMOutput {
  /** [B, T, V] */
  logits: tf.Tensor;
  /** As {@link LlamaModelOutput.hiddenStates}. */
  hiddenStates?: tf.Tensor[];
}

/** The decoder stack without the head. HF: `LlamaModel`. */
export class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: LlamaDecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly config: ResolvedLlamaConfig;

  constructor(config: LlamaConfig) {
    super();
    this.config = resolveLlamaConfig(config);
    const random = new Random(this.config.seed);
    this.embedTokens = this.module(
      "embed_tokens",
      new Embedding({ numEmbeddings: config.vocabSize, embeddingDim: config.hiddenSize, seed: random.nextSeed() }),
    );
    for (let i = 0; i < config.numLayers; i++)
      this.layers.push(this.module(`layers.${i}`, new LlamaDecoderLayer(this.config, random.nextSeed())));
    this.norm = this.module("norm", new RMSNorm({ dim: config.hiddenSize, eps: this.config.rmsNormEps }));
  }

  /** @returns lastHiddenState [B, T, D] (after the final norm) and, when asked, hiddenStates (numLayers + 1 of [B, T, D]) */
  forward(inputs: LlamaInputs): LlamaModelOutput {
    const { inputIds, inputsEmbeds, attentionMask: padding, cache } = inputs;
    if (!inputIds === !inputsEmbeds) throw new Error("Llama: give exactly one of inputIds and inputsEmbeds");
    if (inputIds && (inputIds.rank !== 2 || inputIds.dtype !== "int32"))
      throw new Error(`Llama: inputIds must be int32 [B, T], got ${inputIds.dtype} [${inputIds.shape}]`);
    if (inputsEmbeds && (inputsEmbeds.rank !== 3 || inputsEmbeds.shape[2] !== this.config.hiddenSize)) {
      throw new Error(`Llama: inputsEmbeds must be [B, T, ${this.config.hiddenSize}], got [${inputsEmbeds.shape}]`);
    }
    const [B, T] = (inputIds ?? inputsEmbeds)!.shape;
    const past = cache?.length ?? 0;
    if (padding && (padding.rank !== 2 || padding.shape[0] !== B || padding.shape[1] !== past + T)) {
      throw new Error(`Llama: attentionMask must be [${B}, ${past + T}] (cached + new positions), got [${padding.shape}]`);
    }
    if (inputs.branchIds && cache) throw new Error("Llama: branchIds are for training on packed branches, not with a cache");
    if (
      inputs.positionIds &&
      (inputs.positionIds.rank !== 2 || inputs.positionIds.shape[0] !== B || inputs.positionIds.shape[1] !== T)
    )
      throw new Error(`Llama: positionIds must be [${B}, ${T}], got [${inputs.positionIds.shape}]`);
    return tidy(() => {
      let x = inputsEmbeds ?? this.embedTokens.apply(inputIds!); // [B, T, D]
      const positions =
        inputs.positionIds ??
        tf
          .range(past, past + T, 1, "int32")
          .reshape([1, T])
          .tile([B, 1]); // [B, T]
      const rope = rotaryTables(positions, this.config.headDim, this.config.rope); // [B, 1, T, Dh] each
      const mask = attentionMask({ queries: T, keys: past + T, causal: true, padding, branches: inputs.branchIds }); // [T, Tk] or [B, 1, T, Tk]
      const hiddenStates: tf.Tensor[] = [x];
      this.layers.forEach((layer, index) => {
        x = layer.apply(x, rope, mask, cache ? { cache, layer: index } : undefined);
        hiddenStates.push(x);
      });
      const lastHiddenState = this.norm.apply(x);
      if (!inputs.outputHiddenStates) return { lastHiddenState };
      hiddenStates[hiddenStates.length - 1] = lastHiddenState; // as transformers reports it
      return { lastHiddenState, hiddenStates };
    });
  }
}

/** Options of {@link LlamaForCausalLM.generate}. */
export interface GenerateOptions extends SamplingOptions, LogitsProcessorOptions {
  /** New tokens at most. Default 20. */
  maxNewTokens?: number;
  /** Ids that end a row (included in the output). Default the config's `eosTokenIds`. */
  stopTokens?: readonly number[];
  /** [B, T] left-padding mask of the prompt (1 real, 0 padding). Default all ones. */
  attentionMask?: tf.Tensor;
  /** Prompt as embeddings [B, T, D] instead of ids (vision-language models); the output then holds only new tokens. */
  inputsEmbeds?: tf.Tensor;
  /** Use the KV cache (default true); false recomputes the whole sequence each step. */
  useCache?: boolean;
  /** Beam search with this many beams per row (`beam_search.ts`); 1 (default) = greedy or sampling. Not with temperature > 0. */
  numBeams?: number;
  /** Beam search: score = Σ log p / (new tokens)^lengthPenalty. Default 1. */
  lengthPenalty?: number;
  /** Beam search's stopping rule (see {@link EarlyStopping}). Default false. */
  earlyStopping?: EarlyStopping;
  /**
   * Per row, the prompt ids the repetition penalty and n-gram ban count when the prompt is given as
   * `inputsEmbeds` (e.g. LLaVA's text ids). Default none (an ids prompt counts itself).
   */
  promptIds?: readonly (readonly number[])[];
}

/** Llama with its language-model head. HF: `LlamaForCausalLM`. */
export class LlamaForCausalLM extends Module {
  readonly model: LlamaModel;
  /** Undefined when tied to `model.embed_tokens`. */
  readonly lmHead: Linear | undefined;
  readonly config: ResolvedLlamaConfig;

  constructor(config: LlamaConfig) {
    super();
    this.model = this.module("model", new LlamaModel(config));
    this.config = this.model.config;
    this.lmHead = this.config.tieWordEmbeddings
      ? undefined
      : this.module(
          "lm_head",
          new Linear({ inFeatures: config.hiddenSize, outFeatures: config.vocabSize, bias: false, seed: this.config.seed + 1 }),
        );
  }

  /** hidden: [..., D] → logits [..., V] */
  head(hidden: tf.Tensor): tf.Tensor {
    if (this.lmHead) return this.lmHead.apply(hidden);
    return tf.tidy(() => {
      const D = this.config.hiddenSize;
      // [N, D] · [V, D]ᵀ → [N, V]
      return tf
        .matMul(hidden.reshape([-1, D]), this.model.embedTokens.weight, false, true)
        .reshape([...hidden.shape.slice(0, -1), this.config.vocabSize]);
    });
  }

  /** @returns logits [B, T, V] and, when asked, the hidden states */
  forward(inputs: LlamaInputs): CausalLMOutput {
    return tidy(() => {
      const { lastHiddenState, hiddenStates } = this.model.forward(inputs);
      return hiddenStates ? { logits: this.head(lastHiddenState), hiddenStates } : { logits: this.head(lastHiddenState) };
    });
  }

  /** ids: [B, T] int32 → logits [B, T, V] */
  apply(inputIds: tf.Tensor): tf.Tensor {
    return this.forward({ inputIds }).logits;
  }

  /**
   * Autoregressive generation: greedy (default), sampled (temperature,
   * top-k, top-p, seeded) or beam search (`numBeams`), after the repetition
   * penalty and n-gram ban when asked, with the KV cache, left-padded batches and stop tokens.
   * @param inputIds [B, T] int32 prompt (or undefined with `options.inputsEmbeds`)
   * @returns one array per row: prompt ids then new ids (only new ids for an embeddings prompt); rows that stop early are padded with `padTokenId`
   */
  async generate(inputIds: tf.Tensor | undefined, options: GenerateOptions = {}): Promise<number[][]> {
    const maxNewTokens = options.maxNewTokens ?? 20;
    const stop = new Set(options.stopTokens ?? this.config.eosTokenIds);
    const useCache = options.useCache ?? true;
    const prompt = inputIds ?? options.inputsEmbeds;
    if (!prompt) throw new Error("generate: give inputIds or options.inputsEmbeds");
    validateGenerateOptions(options, this.config.vocabSize);
    validateLogitsProcessorOptions(options);
    validateBeamSearchOptions(options);
    checkPromptNotEmpty(prompt);
    if (inputIds) await checkTokenIds(inputIds, this.config.vocabSize);
    const [B, T] = prompt.shape;
    if (options.promptIds && options.promptIds.length !== B)
      throw new Error(`generate: promptIds holds ${options.promptIds.length} rows but the prompt ${B}`);
    if ((options.numBeams ?? 1) > 1) return this.generateWithBeams(inputIds, options);
    const processed = hasLogitsProcessors(options);
    const random = new Random(options.seed ?? 0);
    const rows: number[][] = inputIds ? ((await inputIds.array()) as number[][]) : Array.from({ length: B }, () => []);
    // The attention mask so far, one row per sequence; grows by a 1 per generated token.
    const maskRows = options.attentionMask
      ? ((await options.attentionMask.array()) as number[][])
      : Array.from({ length: B }, () => new Array(T).fill(1));
    const done = new Array(B).fill(false);
    const newTokens: number[][] = Array.from({ length: B }, () => []);
    const cache = useCache ? new KVCache(this.config.numLayers) : undefined;
    let stepIds: tf.Tensor | undefined = inputIds?.clone();
    let stepEmbeds: tf.Tensor | undefined = inputIds ? undefined : options.inputsEmbeds!.clone();
    try {
      for (let step = 0; step < maxNewTokens && !done.every(Boolean); step++) {
        const lastLogits = this.nextTokenLogits(stepIds, stepEmbeds, maskRows, cache); // [B, V]
        const values = (await lastLogits.data()) as Float32Array;
        lastLogits.dispose();
        for (let b = 0; b < B; b++) {
          const V = this.config.vocabSize;
          let scores = values.subarray(b * V, (b + 1) * V);
          if (!done[b] && processed) {
            scores = scores.slice();
            processLogits(scores, [...(inputIds ? rows[b] : (options.promptIds?.[b] ?? [])), ...newTokens[b]], options);
          }
          const token = done[b] ? (this.config.padTokenId ?? 0) /* no pad id: 0 */ : sampleToken(scores, options, random);
          newTokens[b].push(token);
          if (!done[b] && stop.has(token)) done[b] = true;
          maskRows[b].push(1);
        }
        stepEmbeds?.dispose();
        stepIds?.dispose();
        stepEmbeds = undefined;
        if (useCache) {
          stepIds = tf.tensor2d(
            newTokens.map((tokens) => [tokens[tokens.length - 1]]),
            [B, 1],
            "int32",
          );
        } else if (inputIds) {
          stepIds = tf.tensor2d(
            rows.map((row, b) => [...row, ...newTokens[b]]),
            [B, T + newTokens[0].length],
            "int32",
          );
        } else {
          const embeds = options.inputsEmbeds!;
          stepEmbeds = tf.tidy(() =>
            tf.concat([embeds, this.model.embedTokens.apply(tf.tensor2d(newTokens, [B, newTokens[0].length], "int32"))], 1),
          );
        }
      }
    } finally {
      stepIds?.dispose();
      stepEmbeds?.dispose();
      cache?.dispose();
    }
    return rows.map((row, b) => [...row, ...newTokens[b]]);
  }

  /**
   * The next-token logits of each row after feeding this step's ids [N, Tstep] or embeddings [N, Tstep, D].
   * maskRows: the attention mask so far, one row per sequence (its width = cached + Tstep). → [N, V]
   */
  private nextTokenLogits(
    stepIds: tf.Tensor | undefined,
    stepEmbeds: tf.Tensor | undefined,
    maskRows: readonly number[][],
    cache: KVCache | undefined,
  ): tf.Tensor {
    return tf.tidy(() => {
      const N = maskRows.length;
      const width = maskRows[0].length;
      const stepLength = (stepIds ?? stepEmbeds)!.shape[1] as number;
      // Positions count real tokens only (transformers' generate: cumsum(mask) − 1, padding at 1).
      const positions = maskRows.map((row) => {
        const all: number[] = [];
        let count = 0;
        for (const value of row) {
          all.push(value ? count : 1);
          count += value;
        }
        return all.slice(width - stepLength);
      });
      const { logits } = this.forward({
        inputIds: stepIds,
        inputsEmbeds: stepEmbeds,
        attentionMask: tf.tensor2d(maskRows as number[][], [N, width], "int32"),
        positionIds: tf.tensor2d(positions, [N, stepLength], "int32"),
        cache,
      });
      return logits.slice([0, stepLength - 1, 0], [N, 1, this.config.vocabSize]).reshape([N, this.config.vocabSize]); // [N, V]
    });
  }

  /** {@link generate} with `numBeams` > 1: each prompt row repeated K times (row b·K + k), searched by {@link beamSearch}. */
  private async generateWithBeams(inputIds: tf.Tensor | undefined, options: GenerateOptions): Promise<number[][]> {
    const K = options.numBeams!;
    if ((options.temperature ?? 0) > 0)
      throw new Error(
        `generate: beam search samples nothing; use temperature 0 with numBeams ${K} (got temperature ${options.temperature})`,
      );
    const prompt = (inputIds ?? options.inputsEmbeds)!;
    const [B, T] = prompt.shape;
    const useCache = options.useCache ?? true;
    const rows: number[][] = inputIds ? ((await inputIds.array()) as number[][]) : Array.from({ length: B }, () => []);
    const promptMask = options.attentionMask
      ? ((await options.attentionMask.array()) as number[][])
      : Array.from({ length: B }, () => new Array<number>(T).fill(1));
    let maskRows = promptMask.flatMap((row) => Array.from({ length: K }, () => row.slice())); // [B·K, width]
    let beamTokens: number[][] = Array.from({ length: B * K }, () => []);
    const expanded = tf.tidy(() =>
      tf.gather(
        prompt,
        tf.tensor1d(
          Array.from({ length: B * K }, (_, i) => Math.floor(i / K)),
          "int32",
        ),
      ),
    ); // [B·K, T(, D)]
    const cache = useCache ? new KVCache(this.config.numLayers) : undefined;
    const step: BeamStep = async (origins, tokens) => {
      let stepIds: tf.Tensor | undefined;
      let stepEmbeds: tf.Tensor | undefined;
      if (!origins || !tokens) {
        if (inputIds) stepIds = expanded;
        else stepEmbeds = expanded;
      } else {
        maskRows = origins.map((row) => [...maskRows[row], 1]);
        beamTokens = origins.map((row, i) => [...beamTokens[row], tokens[i]]);
        if (cache) {
          cache.reorder(origins);
          stepIds = tf.tensor2d(tokens as number[], [B * K, 1], "int32");
        } else if (inputIds) {
          const rowsK = beamTokens.map((row, i) => [...rows[Math.floor(i / K)], ...row]);
          stepIds = tf.tensor2d(rowsK, [B * K, T + beamTokens[0].length], "int32");
        } else {
          stepEmbeds = tf.tidy(() =>
            tf.concat(
              [expanded, this.model.embedTokens.apply(tf.tensor2d(beamTokens, [B * K, beamTokens[0].length], "int32"))],
              1,
            ),
          );
        }
      }
      const logits = this.nextTokenLogits(stepIds, stepEmbeds, maskRows, cache); // [B·K, V]
      if (stepIds !== expanded) stepIds?.dispose();
      if (stepEmbeds !== expanded) stepEmbeds?.dispose();
      const values = (await logits.data()) as Float32Array;
      logits.dispose();
      return values;
    };
    const pad = this.config.padTokenId ?? 0;
    try {
      const { tokens } = await beamSearch(step, inputIds ? rows : (options.promptIds ?? rows), this.config.vocabSize, {
        numBeams: K,
        maxNewTokens: options.maxNewTokens ?? 20,
        lengthPenalty: options.lengthPenalty,
        earlyStopping: options.earlyStopping,
        stopTokens: options.stopTokens ?? this.config.eosTokenIds,
        padTokenId: pad,
        repetitionPenalty: options.repetitionPenalty,
        noRepeatNgramSize: options.noRepeatNgramSize,
      });
      const longest = Math.max(...tokens.map((row) => row.length));
      return rows.map((row, b) => [...row, ...tokens[b], ...new Array<number>(longest - tokens[b].length).fill(pad)]);
    } finally {
      expanded.dispose();
      cache?.dispose();
    }
  }
}
