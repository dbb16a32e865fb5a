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
import type { ChatMessage, TextTokenizer } from "../tokenizer/tokenizer";
import { IMAGE_PLACEHOLDER, expandImageTokens, padConversations } from "../data/conversation";
import { imageTensor } from "../data/loaders";

/** Options of {@link chat}. */
export interface ChatOptions extends SamplingOptions {
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
 * with its generation prompt; with an image and no placeholder in the text,
 * `<image>\n` opens the first user message (LLaVA's convention); each
 * placeholder becomes `imageTokens` ids.
 */
export function chatPromptIds(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
  imageTokens: number,
  hasImage: boolean,
  system?: string,
): number[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new Error("chat: no messages");
  const last = messages[messages.length - 1];
  if (last.role !== "user")
    throw new Error(`chat: the last message is from ${JSON.stringify(last.role)}; expected "user" (the model answers it)`);
  let placed = messages.map((m) => ({ ...m }));
  const placeholders = placed.reduce((sum, m) => sum + m.content.split(IMAGE_PLACEHOLDER).length - 1, 0);
  if (hasImage && placeholders === 0) {
    const first = placed.findIndex((m) => m.role === "user");
    placed = placed.map((m, k) => (k === first ? { ...m, content: `${IMAGE_PLACEHOLDER}\n${m.content}` } : m));
  } else if (placeholders !== (hasImage ? 1 : 0)) {
    throw new Error(
      `chat: the messages hold ${placeholders} ${IMAGE_PLACEHOLDER} placeholder(s) but ${hasImage ? "one image was" : "no image was"} given`,
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
 * image (or all text only). Images as pixels [B, 3, S, S] or as cached tower
 * features [B, Nimg, Dvision·layers] ({@link LlavaForConditionalGeneration.visionFeatures}).
 */
export async function chatBatch(
  model: LlavaForConditionalGeneration,
  tokenizer: TextTokenizer,
  conversations: readonly (readonly ChatMessage[])[],
  images: { pixelValues?: tf.Tensor; visionFeatures?: tf.Tensor },
  options: ChatOptions = {},
): Promise<ChatReply[]> {
  const given = images.pixelValues ?? images.visionFeatures;
  if (given && given.shape[0] !== conversations.length)
    throw new Error(
      `chatBatch: ${conversations.length} conversation(s) but ${given.shape[0]} image(s); give one image per conversation or none`,
    );
  const maxNewTokens = options.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens <= 0)
    throw new Error(`chat: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  const prompts = conversations.map((messages) =>
    chatPromptIds(tokenizer, messages, model.imageTokensPerImage, given !== undefined, options.system),
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
      { inputIds, attentionMask, pixelValues: images.pixelValues, visionFeatures: images.visionFeatures },
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
