/**
 * BLIP-2 put together: the frozen image encoder (the labs' tiny CLIP image
 * tower), the trained bridge ({@link Blip2ForPretraining}) and the frozen LLM
 * (the labs' tiny Llama), with the tokenizer: stage 2's language-model loss,
 * captioning and zero-shot VQA, BLIP-2 style or InstructBLIP style.
 *
 * The LLM's input is what transformers' `Blip2ForConditionalGeneration` builds:
 * the Nq projected queries in front of the embedded prompt (see
 * {@link assembleSoftPrompt}), then `LlamaForCausalLM.generate` on embeddings.
 * Prompts are written as the LLM's own corpus writes them (lower case): a
 * caption follows `<|bos|>`, an answer follows `<|bos|>question: {q} answer:`.
 *
 * Papers: Li et al., "BLIP-2" (2023), §3.3; Dai et al., "InstructBLIP" (2023), Fig. 3.
 * Reference: transformers `Blip2ForConditionalGeneration.generate`,
 * `InstructBlipForConditionalGeneration.generate`; LAVIS `blip2_opt.py`.
 */
import * as tf from "@tensorflow/tfjs";
import { tidy } from "../util/tidy";
import type { CLIPVisionTransformer } from "../models/clip";
import type { LlamaForCausalLM } from "../models/llama";
import type { TextTokenizer } from "../tokenizer/tokenizer";
import type { Blip2ForPretraining, QFormerText } from "../models/blip2_pretraining";
import { assembleSoftPrompt, shiftedLanguageModelLoss, type SoftPrompt } from "../models/blip2_losses";

/** The VQA prompt, in the format of the language backbone's corpus (`question: … answer: …`, lower case). */
export function vqaPrompt(question: string): string {
  return `question: ${question} answer:`;
}

/** The instruction InstructBLIP's Q-Former reads when asked for a caption (a question reads the question itself). */
export const CAPTION_INSTRUCTION = "a short caption of the image";

/**
 * The frozen image features the Q-Former reads: every token of the CLIP image
 * tower's last layer (class token + N patches) through its post-LayerNorm.
 * pixels: [B, 3, S, S] (CLIP-normalised) → [B, 1 + N, Dv]
 */
export function frozenImageFeatures(vision: CLIPVisionTransformer, pixels: tf.Tensor): tf.Tensor {
  return tf.tidy(() => vision.postLayerNorm.apply(vision.forward(pixels).lastHiddenState));
}

/** LLM text of a batch: ids [B, T] int32, mask [B, T], labels [B, T] (−100 on the prompt and padding). */
export interface LanguageText {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  labels: tf.Tensor2D;
}

/**
 * `<|bos|>prompt` (+ `target<|eos|>` when targets are given), padded right for
 * training or left for generation; labels only on the target and its end.
 */
export function languageText(
  tokenizer: TextTokenizer,
  prompts: readonly string[],
  targets?: readonly string[],
  padSide: "left" | "right" = "right",
): LanguageText {
  if (targets && targets.length !== prompts.length)
    throw new Error(`languageText: ${prompts.length} prompts but ${targets.length} targets`);
  const rows = prompts.map((prompt, k) => {
    const promptIds = tokenizer.encode(prompt, { addBos: true });
    if (!targets) return { ids: promptIds, learn: 0 };
    const ids = tokenizer.encode(prompt + targets[k], { addBos: true, addEos: true });
    if (promptIds.some((id, i) => ids[i] !== id))
      throw new Error(
        `languageText: the prompt ${JSON.stringify(prompt)} tokenizes differently in front of the target ${JSON.stringify(targets[k])}`,
      );
    return { ids, learn: ids.length - promptIds.length };
  });
  const T = Math.max(...rows.map((r) => r.ids.length));
  const pad = tokenizer.padTokenId;
  const inputIds: number[][] = [],
    attentionMask: number[][] = [],
    labels: number[][] = [];
  for (const { ids, learn } of rows) {
    const padding = new Array(T - ids.length);
    const label = ids.map((id, i) => (i >= ids.length - learn ? id : -100));
    if (padSide === "left") {
      inputIds.push([...padding.fill(pad), ...ids]);
      attentionMask.push([...new Array(T - ids.length).fill(0), ...ids.map(() => 1)]);
      labels.push([...new Array(T - ids.length).fill(-100), ...label]);
    } else {
      inputIds.push([...ids, ...padding.fill(pad)]);
      attentionMask.push([...ids.map(() => 1), ...new Array(T - ids.length).fill(0)]);
      labels.push([...label, ...new Array(T - ids.length).fill(-100)]);
    }
  }
  return {
    inputIds: tf.tensor2d(inputIds, [rows.length, T], "int32"),
    attentionMask: tf.tensor2d(attentionMask, [rows.length, T], "int32"),
    labels: tf.tensor2d(labels, [rows.length, T], "int32"),
  };
}

/** Q-Former text (`<|bos|>text`, padded right): captions for stage 1, instructions for InstructBLIP. */
export function qformerText(tokenizer: TextTokenizer, texts: readonly string[], maxLength = 40): QFormerText {
  const { inputIds, attentionMask } = tokenizer.encodeBatch(texts, { addBos: true, addEos: true });
  if (inputIds[0].length > maxLength)
    throw new Error(`qformerText: a text of ${inputIds[0].length} tokens exceeds the Q-Former's ${maxLength} positions`);
  return { inputIds: tf.tensor2d(inputIds, undefined, "int32"), padding: tf.tensor2d(attentionMask, undefined, "int32") };
}

/** Options of {@link Blip2Pipeline.generate}. */
export interface Blip2GenerateArgs {
  /** Use InstructBLIP's query path: the instruction also enters the Q-Former. Default false (BLIP-2). */
  readonly instructionAware?: boolean;
  /** The Q-Former instructions (InstructBLIP), one per row. Default the prompts. */
  readonly instructions?: readonly string[];
  /** New tokens at most. Default 24. */
  readonly maxNewTokens?: number;
}

export class Blip2Pipeline {
  constructor(
    readonly vision: CLIPVisionTransformer,
    readonly bridge: Blip2ForPretraining,
    readonly language: LlamaForCausalLM,
    readonly tokenizer: TextTokenizer,
  ) {}

  /** pixels [B, 3, S, S] → the frozen features [B, 1 + N, Dv] */
  imageFeatures(pixels: tf.Tensor): tf.Tensor {
    return frozenImageFeatures(this.vision, pixels);
  }

  /**
   * The LLM's input for a batch: the soft prompt of `image` [B, Tk, Dv] (none: the
   * blind LLM, text only) in front of `text`'s embeddings.
   */
  softPromptInputs(
    image: tf.Tensor | undefined,
    text: LanguageText,
    args: { instructionAware?: boolean; instructions?: QFormerText } = {},
  ): SoftPrompt {
    return tidy<SoftPrompt>(() => {
      const textEmbeds = this.language.model.embedTokens.apply(text.inputIds); // [B, T, D]
      if (!image)
        return {
          inputsEmbeds: textEmbeds,
          attentionMask: text.attentionMask.clone(),
          labels: text.labels.clone(),
        };
      const queries = this.bridge
        .bridge(args.instructionAware ?? false)
        .softPrompt(image, args.instructionAware ? args.instructions : undefined); // [B, Nq, D]
      return assembleSoftPrompt(queries, textEmbeds, text.attentionMask, text.labels);
    });
  }

  /** Stage 2's loss: next-token cross-entropy of the frozen LLM on the targets, given the soft prompt. Gradients reach the bridge only. */
  languageModelLoss(
    image: tf.Tensor,
    text: LanguageText,
    args: { instructionAware?: boolean; instructions?: QFormerText } = {},
  ): tf.Scalar {
    return tf.tidy(() => {
      const inputs = this.softPromptInputs(image, text, args);
      const { logits } = this.language.forward({ inputsEmbeds: inputs.inputsEmbeds, attentionMask: inputs.attentionMask });
      return shiftedLanguageModelLoss(logits, inputs.labels!);
    });
  }

  /** Greedy continuations of `<|bos|>prompt` after the image's soft prompt (image undefined: the blind LLM). */
  async generate(image: tf.Tensor | undefined, prompts: readonly string[], args: Blip2GenerateArgs = {}): Promise<string[]> {
    if (image && image.shape[0] !== prompts.length)
      throw new Error(`BLIP-2 generate: ${image.shape[0]} images but ${prompts.length} prompts`);
    const text = languageText(this.tokenizer, prompts, undefined, "left");
    const instructions = args.instructionAware ? qformerText(this.tokenizer, args.instructions ?? prompts) : undefined;
    const inputs = this.softPromptInputs(image, text, { instructionAware: args.instructionAware, instructions });
    tf.dispose([text.inputIds, text.attentionMask, text.labels, instructions?.inputIds, instructions?.padding, inputs.labels]);
    try {
      const rows = await this.language.generate(undefined, {
        inputsEmbeds: inputs.inputsEmbeds,
        attentionMask: inputs.attentionMask,
        maxNewTokens: args.maxNewTokens ?? 24,
      });
      const eos = this.tokenizer.eosTokenId;
      return rows.map((row) =>
        this.tokenizer.decode(row.includes(eos) ? row.slice(0, row.indexOf(eos)) : row, { skipSpecialTokens: true }).trim(),
      );
    } finally {
      tf.dispose([inputs.inputsEmbeds, inputs.attentionMask]);
    }
  }

  /** Captions of images [B, Tk, Dv] (or B blind captions when `image` is a number). */
  caption(image: tf.Tensor | number, args: Omit<Blip2GenerateArgs, "instructions"> = {}): Promise<string[]> {
    const B = typeof image === "number" ? image : (image.shape[0] as number);
    return this.generate(typeof image === "number" ? undefined : image, new Array(B).fill(""), {
      ...args,
      instructions: new Array(B).fill(CAPTION_INSTRUCTION),
    });
  }

  /** Short answers to one question per image (image undefined: the blind LLM). */
  async answer(
    image: tf.Tensor | undefined,
    questions: readonly string[],
    args: Omit<Blip2GenerateArgs, "instructions"> = {},
  ): Promise<string[]> {
    const answers = await this.generate(image, questions.map(vqaPrompt), { maxNewTokens: 4, ...args, instructions: questions });
    return answers.map((a) => a.split(/\s+/)[0] ?? "");
  }

  /**
   * Where each query looks: the queries' cross-attention weights over the image
   * patches, averaged over heads, class token dropped. image: [B, 1 + N, Dv] →
   * [B, Nq, N] (N = 64: an 8 × 8 grid of patches in reading order).
   * `layer` indexes the cross-attending layers (default the last).
   */
  patchAttention(
    image: tf.Tensor,
    args: { instructionAware?: boolean; instructions?: readonly string[]; layer?: number } = {},
  ): tf.Tensor3D {
    const instructions = args.instructionAware
      ? qformerText(this.tokenizer, args.instructions ?? new Array(image.shape[0]).fill(CAPTION_INSTRUCTION))
      : undefined;
    try {
      return tf.tidy(() => {
        const { crossAttentions } = this.bridge.bridge(args.instructionAware ?? false).queryOutputs(image, instructions, true);
        const layers = crossAttentions!;
        const index = args.layer ?? layers.length - 1;
        if (!(Number.isInteger(index) && index >= 0 && index < layers.length))
          throw new Error(`patchAttention: layer must be 0…${layers.length - 1} (the cross-attending layers), got ${args.layer}`);
        const weights = layers[index].mean(1); // [B, H, Nq, 1 + N] → [B, Nq, 1 + N]
        const [B, Nq, Tk] = weights.shape;
        return weights.slice([0, 0, 1], [B, Nq, Tk - 1]) as tf.Tensor3D; // patches only: [B, Nq, N]
      });
    } finally {
      if (instructions) tf.dispose([instructions.inputIds, instructions.padding]);
    }
  }

  /** Frees all three models. */
  dispose(): void {
    this.vision.dispose();
    this.bridge.dispose();
    this.language.dispose();
  }
}
