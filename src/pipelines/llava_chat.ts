/**
 * Chatting with a LLaVA model: messages rendered with the tokenizer's chat
 * template and a generation prompt, the `<image>` placeholder expanded to the
 * image-token count, then generation with the KV cache until a stop token
 * (the template's end of turn `<|end|>` or `<|eos|>`).
 *
 * Reference: transformers `LlavaProcessor` + `generate` (the placeholder
 * expansion and `apply_chat_template(..., add_generation_prompt=True)`);
 * haotian-liu/LLaVA `llava/serve/cli.py` (the conversation loop).
 */
import * as tf from "@tensorflow/tfjs";
import type { LlavaForConditionalGeneration } from "../models/llava";
import type { SamplingOptions } from "../models/sampling";
import type { GenerateOptions } from "../models/llama";
import type { ChatMessage, TextTokenizer } from "../tokenizer/tokenizer";
import { IMAGE_PLACEHOLDER, expandImageTokens, padConversations } from "../data/conversation";
import { imageTensor } from "../data/loaders";

/** The decoding options of `generate` that a chat passes through as they are (beam search, repetition penalty, n-gram ban). */
export type ChatDecodingOptions = Pick<
  GenerateOptions,
  "numBeams" | "lengthPenalty" | "earlyStopping" | "repetitionPenalty" | "noRepeatNgramSize"
>;

/** Options of {@link chat}: sampling and decoding as `generate` defines them (greedy by default). */
export interface ChatOptions extends SamplingOptions, ChatDecodingOptions {
  /** New tokens at most. Default 64. */
  readonly maxNewTokens?: number;
  /** Ids that end the reply. Default the template's `<|end|>` (when the vocabulary has it) and EOS. */
  readonly stopTokens?: readonly number[];
  /** A system message before the conversation. Default none. */
  readonly system?: string;
  /** Decode with the KV cache. Default true. */
  readonly useCache?: boolean;
}

/** The model's reply. */
export interface ChatReply {
  /** The reply's text (stop token not included). */
  readonly text: string;
  /** The new token ids, the stop token included when it came. */
  readonly tokens: readonly number[];
  /** True when a stop token ended it (false: `maxNewTokens` ran out). */
  readonly stopped: boolean;
}

/** An image for {@link chat}: a PNG path, CLIP-normalised pixels [3, S, S] or [1, 3, S, S], or none (text only). */
export type ChatImage = string | tf.Tensor | undefined;

/** The default stop ids: `<|end|>` (when present) and EOS. */
export function chatStopTokens(tokenizer: TextTokenizer): number[] {
  const stops = [tokenizer.eosTokenId];
  try {
    stops.unshift(tokenizer.tokenId("<|end|>"));
  } catch {
    // a template without an end-of-turn token stops at EOS only
  }
  return stops;
}

/**
 * Prompt ids of a conversation awaiting the assistant's reply: the template
 * with its generation prompt; with one image and no placeholder in the text,
 * `<image>\n` opens the first user message (LLaVA's convention); each
 * placeholder becomes `imageTokens` ids.
 * @param images whether one image comes with the conversation, or how many (multi-image prompts place
 *   their own placeholders, one per image)
 */
export function chatPromptIds(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  imageTokens: number,
  images: boolean | number,
  system?: string,
): number[] {
  const count = typeof images === "number" ? images : images ? 1 : 0;
  if (!Number.isInteger(count) || count < 0) throw new Error(`chat: images must be a count ≥ 0, got ${JSON.stringify(images)}`);
  if (!Array.isArray(messages) || messages.length === 0) throw new Error("chat: no messages");
  const last = messages[messages.length - 1];
  if (last.role !== "user")
    throw new Error(`chat: the last message is from ${JSON.stringify(last.role)}; expected "user" (the model answers it)`);
  let placed = messages.map((m) => ({ ...m }));
  const placeholders = placed.reduce((sum, m) => sum + m.content.split(IMAGE_PLACEHOLDER).length - 1, 0);
  if (count === 1 && placeholders === 0) {
    const first = placed.findIndex((m) => m.role === "user");
    placed = placed.map((m, k) => (k === first ? { ...m, content: `${IMAGE_PLACEHOLDER}\n${m.content}` } : m));
  } else if (placeholders !== count) {
    throw new Error(
      `chat: the messages hold ${placeholders} ${IMAGE_PLACEHOLDER} placeholder(s) but ${count === 0 ? "no image was" : count === 1 ? "one image was" : `${count} images were`} given`,
    );
  }
  if (system !== undefined) placed.unshift({ role: "system", content: system });
  return expandImageTokens(
    tokenizer.encode(tokenizer.applyChatTemplate(placed, { addGenerationPrompt: true })),
    tokenizer.tokenId(IMAGE_PLACEHOLDER),
    imageTokens,
  );
}

/**
 * Replies to `messages` about `image` (see {@link ChatImage}).
 * @example const reply = await chat(model, tokenizer, "data/world/scenes/test/000000.png", [{ role: "user", content: "what color is the star?" }]);
 */
export async function chat(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  image: ChatImage,
  messages: readonly ChatMessage[],
  options: ChatOptions = {},
): Promise<ChatReply> {
  const pixels = await pixelsOf(image, model.config.vision.imageSize);
  try {
    const [reply] = await chatBatch(model, tokenizer, [messages], pixels ? { pixelValues: pixels } : {}, options);
    return reply;
  } finally {
    pixels?.dispose();
  }
}

/**
 * Replies to several conversations at once (left-padded), each about one
 * image, or F images (`framesPerRow`, multi-image prompts: each conversation
 * holds F `<image>` placeholders), or all text only. Images as pixels
 * [B·F, 3, S, S] or as cached tower features [B·F, N, Dvision·layers]
 * ({@link LlavaForConditionalGeneration.visionFeatures}), row b's at b·F … b·F + F − 1.
 */
export async function chatBatch(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  conversations: readonly (readonly ChatMessage[])[],
  images: { pixelValues?: tf.Tensor; visionFeatures?: tf.Tensor; framesPerRow?: number },
  options: ChatOptions = {},
): Promise<ChatReply[]> {
  const given = images.pixelValues ?? images.visionFeatures;
  const framesPerRow = images.framesPerRow ?? 1;
  if (!Number.isInteger(framesPerRow) || framesPerRow < 1)
    throw new Error(`chatBatch: framesPerRow must be a positive integer, got ${JSON.stringify(images.framesPerRow)}`);
  if (given && given.shape[0] !== conversations.length * framesPerRow)
    throw new Error(
      `chatBatch: ${conversations.length} conversation(s) × ${framesPerRow} image(s) each need ${conversations.length * framesPerRow} image(s), got ${given.shape[0]}`,
    );
  const maxNewTokens = options.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens <= 0)
    throw new Error(`chat: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const prompts = conversations.map((messages) =>
    chatPromptIds(tokenizer, messages, model.imageTokensPerImage, given ? framesPerRow : 0, options.system),
  );
  const padded = padConversations(
    prompts.map((ids) => ({ inputIds: ids, labels: ids })),
    tokenizer.padTokenId,
    "left",
  );
  const [B, T] = [prompts.length, padded.inputIds[0].length];
  const inputIds = tf.tensor2d(padded.inputIds, [B, T], "int32");
  const attentionMask = tf.tensor2d(padded.attentionMask, [B, T], "int32");
  const stops = options.stopTokens ?? chatStopTokens(tokenizer);
  try {
    const rows = await model.generate(
      {
        inputIds,
        attentionMask,
        pixelValues: images.pixelValues,
        visionFeatures: images.visionFeatures,
        ...(images.framesPerRow !== undefined ? { framesPerRow: images.framesPerRow } : {}),
      },
      { ...options, maxNewTokens, stopTokens: stops, useCache: options.useCache ?? true },
    );
    return rows.map((row) => {
      const end = row.findIndex((id) => stops.includes(id));
      const tokens = end >= 0 ? row.slice(0, end + 1) : row;
      return {
        text: tokenizer.decode(end >= 0 ? row.slice(0, end) : row, { skipSpecialTokens: true }),
        tokens,
        stopped: end >= 0,
      };
    });
  } finally {
    tf.dispose([inputIds, attentionMask]);
  }
}

/** A chat image as pixels [1, 3, S, S] (a new tensor the caller disposes), or none. */
async function pixelsOf(image: ChatImage, imageSize: number): Promise<tf.Tensor | undefined> {
  if (image === undefined) return undefined;
  const pixels = typeof image === "string" ? await imageTensor([image]) : image.rank === 3 ? image.expandDims(0) : image.clone();
  const [n, c, h, w] = pixels.shape;
  if (pixels.rank !== 4 || n !== 1 || c !== 3 || h !== imageSize || w !== imageSize) {
    pixels.dispose();
    throw new Error(
      `chat: the image is [${typeof image === "string" ? `${image} decoded to ${[n, c, h, w]}` : image.shape}]; expected pixels [3, ${imageSize}, ${imageSize}] or [1, 3, ${imageSize}, ${imageSize}] (or a ${imageSize}×${imageSize} PNG path)`,
    );
  }
  return pixels;
}
