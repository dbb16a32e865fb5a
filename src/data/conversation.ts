/**
 * LLaVA's conversation preprocessing: a conversation of `human`/`gpt` turns
 * becomes token ids and labels for instruction tuning.
 *
 * - The turns are rendered with the tokenizer's chat template (the same text
 *   `applyChatTemplate` gives at inference).
 * - Labels keep only the assistant's answers (with the template's end-of-turn token,
 *   so the model learns to stop); system, user, template and image positions
 *   are {@link IGNORE_INDEX} (-100, PyTorch's `ignore_index`).
 * - Each `<image>` placeholder is expanded to the image-token count (one
 *   placeholder per image feature vector, as transformers' processors do).
 * - Too long a conversation loses whole trailing rounds, never part of an
 *   answer and never an image's tokens.
 * - The answer mask is built from the template's pieces tokenized one by one;
 *   their concatenation must equal the tokenization of the whole rendered
 *   text, or the labels would be shifted against the tokens. LLaVA only warns
 *   ("tokenization mismatch") and masks the whole example; here it is an
 *   error that names the first differing token.
 * - Stage 1 uses LLaVA's `plain` format instead: image tokens, then the
 *   caption and the end token, with the loss on the caption only.
 *
 * Paper: Liu et al., "Visual Instruction Tuning" (LLaVA, 2023), §4.
 * Reference: haotian-liu/LLaVA `llava/train/train.py` (`preprocess`,
 * `preprocess_plain`, `preprocess_v1`, `tokenizer_image_token`);
 * `llava/conversation.py`.
 */
import type { ChatMessage, TextTokenizer } from "../tokenizer/tokenizer";

/** Label of a position the loss ignores (PyTorch's `CrossEntropyLoss(ignore_index=-100)`). */
export const IGNORE_INDEX = -100;

/** The image placeholder in conversation text. */
export const IMAGE_PLACEHOLDER = "<image>";

/** One turn as the world's (and LLaVA's) instruction sets store it. */
export interface ConversationTurn {
  readonly from: "human" | "gpt";
  readonly value: string;
}

/** Options of {@link tokenizeConversation} and {@link tokenizePlain}. */
export interface ConversationArgs {
  /** Tokens each `<image>` placeholder expands to (the model's `imageTokensPerImage`). Required. */
  readonly imageTokens: number;
  /** Longest sequence in tokens (after expansion); trailing rounds that do not fit are dropped. Default 256 (the language backbone's positions). */
  readonly maxLength?: number;
  /** A system message first (never supervised). Default none. */
  readonly system?: string;
  /** Drop the image placeholders: the blind baseline's text, same conversation without the image. Default false. */
  readonly blind?: boolean;
}

/** One tokenized example. */
export interface TokenizedConversation {
  /** [T] token ids, image placeholders expanded. */
  readonly inputIds: number[];
  /** [T] the token id where the loss applies, {@link IGNORE_INDEX} elsewhere (aligned with `inputIds`; the loss shifts). */
  readonly labels: number[];
  /** Images the ids hold (each `imageTokens` placeholder ids long); the batch must supply that many feature sets. */
  readonly images: number;
  /** Rounds (user + assistant turns) dropped to fit `maxLength`. */
  readonly droppedRounds: number;
}

/** Thrown when the answer mask's tokens differ from the whole text's tokens (LLaVA's "tokenization mismatch"). */
export class TokenizationMismatchError extends Error {}

/** `human`/`gpt` turns → chat messages (`user`/`assistant`); the turns must alternate, starting with `human`, ending with `gpt`. */
export function toChatMessages(turns: readonly ConversationTurn[], system?: string): ChatMessage[] {
  if (!Array.isArray(turns) || turns.length === 0) throw new Error("conversation: no turns");
  const messages: ChatMessage[] = system === undefined ? [] : [{ role: "system", content: system }];
  turns.forEach((turn, k) => {
    const expected = k % 2 === 0 ? "human" : "gpt";
    if (turn?.from !== expected) throw new Error(`conversation: turn ${k} is from ${JSON.stringify(turn?.from)}; expected "${expected}" (turns alternate human, gpt, starting with human)`);
    if (typeof turn.value !== "string") throw new Error(`conversation: turn ${k} has value ${JSON.stringify(turn.value)}; expected a string`);
    if (turn.from === "gpt" && turn.value.includes(IMAGE_PLACEHOLDER)) throw new Error(`conversation: turn ${k} (gpt) holds ${IMAGE_PLACEHOLDER}; images belong in human turns`);
    messages.push({ role: turn.from === "human" ? "user" : "assistant", content: turn.value });
  });
  if (turns.length % 2 !== 0) throw new Error(`conversation: ${turns.length} turns; expected an even number ending with a gpt answer`);
  return messages;
}

/** A message's text without its image placeholders (and the newline after each). */
export function withoutImages(text: string): string {
  return text.split(`${IMAGE_PLACEHOLDER}\n`).join("").split(IMAGE_PLACEHOLDER).join("");
}

/** A piece of the rendered conversation and how many of its tokens the loss sees (0, 1 or all). */
export interface ConversationSegment {
  readonly text: string;
  /** 0: none; 1: the first token (the end-of-turn marker); Infinity: all. */
  readonly supervisedTokens: number;
}

/**
 * The rendered conversation cut into pieces: for each message, what the
 * template adds for it (rendering messages 0…k minus rendering 0…k−1). An
 * assistant message is cut in three: the generation prompt (`<|assistant|>\n`,
 * not supervised), the answer (supervised), and what the template closes the
 * turn with (`<|end|>\n`: its first token, the end of turn, is supervised so
 * that the model learns to stop; the rest is not). A template that rewrites
 * the content (the answer is not found verbatim) has the whole turn after the
 * generation prompt supervised.
 * Errors when the template is not incremental (a prefix's rendering is not a
 * prefix of the whole).
 */
export function conversationSegments(tokenizer: TextTokenizer, messages: readonly ChatMessage[]): ConversationSegment[] {
  const render = (count: number, addGenerationPrompt = false) => tokenizer.applyChatTemplate(messages.slice(0, count), { addGenerationPrompt });
  const afterPrefix = (whole: string, prefix: string, what: string) => {
    if (!whole.startsWith(prefix)) {
      throw new TokenizationMismatchError(`chat template: ${what} does not extend the rendering before it (${JSON.stringify(prefix.slice(-40))} is not a prefix of ${JSON.stringify(whole.slice(0, prefix.length + 40))}); the answer mask cannot be built`);
    }
    return whole.slice(prefix.length);
  };
  const segments: ConversationSegment[] = [{ text: render(0), supervisedTokens: 0 }];
  for (let k = 0; k < messages.length; k++) {
    const before = render(k);
    const through = render(k + 1);
    if (messages[k].role !== "assistant") {
      segments.push({ text: afterPrefix(through, before, `message ${k} (${messages[k].role})`), supervisedTokens: 0 });
      continue;
    }
    const prompt = render(k, true);
    const header = afterPrefix(prompt, before, `the generation prompt before message ${k}`);
    const turn = afterPrefix(through, prompt, `message ${k} (assistant) after the generation prompt`);
    const content = messages[k].content;
    segments.push({ text: header, supervisedTokens: 0 });
    if (content.length > 0 && turn.startsWith(content)) segments.push({ text: content, supervisedTokens: Infinity }, { text: turn.slice(content.length), supervisedTokens: 1 });
    else segments.push({ text: turn, supervisedTokens: Infinity });
  }
  return segments.filter((segment) => segment.text.length > 0);
}

/**
 * Token ids and answer-only labels of a conversation (LLaVA's `preprocess`
 * for a chat template), `<image>` expanded to `args.imageTokens` positions.
 */
export function tokenizeConversation(tokenizer: TextTokenizer, turns: readonly ConversationTurn[], args: ConversationArgs): TokenizedConversation {
  const { imageTokens, maxLength } = resolveArgs(args);
  const messages = toChatMessages(turns, args.system).map((m) => (args.blind && m.role === "user" ? { ...m, content: withoutImages(m.content) } : m));
  const systemCount = args.system === undefined ? 0 : 1;
  const rounds = (messages.length - systemCount) / 2;
  for (let kept = rounds; kept >= 1; kept--) {
    const encoded = encodeMessages(tokenizer, messages.slice(0, systemCount + 2 * kept), imageTokens);
    if (encoded.inputIds.length <= maxLength) return { ...encoded, droppedRounds: rounds - kept };
    if (kept === 1) {
      throw new Error(`conversation: the first round alone is ${encoded.inputIds.length} tokens (${encoded.images} image(s) × ${imageTokens} image tokens included), over maxLength ${maxLength}; raise maxLength (truncation never cuts an answer or an image's tokens)`);
    }
  }
  throw new Error("conversation: unreachable");
}

/**
 * Stage 1's `plain` format (LLaVA's `preprocess_plain`): `<|bos|>`, the image
 * tokens, the caption, `<|eos|>`; loss on the caption and the end token.
 */
export function tokenizePlain(tokenizer: TextTokenizer, caption: string, args: Pick<ConversationArgs, "imageTokens" | "maxLength" | "blind">): TokenizedConversation {
  const { imageTokens, maxLength } = resolveArgs(args);
  if (typeof caption !== "string" || caption.trim().length === 0) throw new Error(`plain format: caption must be a non-empty string, got ${JSON.stringify(caption)}`);
  if (caption.includes(IMAGE_PLACEHOLDER)) throw new Error(`plain format: the caption ${JSON.stringify(caption)} holds ${IMAGE_PLACEHOLDER}; the image comes first, the caption after`);
  const imagePart = args.blind ? [] : [tokenizer.tokenId(IMAGE_PLACEHOLDER)];
  const target = [...tokenizer.encode(caption), tokenizer.eosTokenId];
  const pieces = [[tokenizer.bosTokenId, ...imagePart], target];
  checkPiecesMatch(tokenizer, pieces, `${tokenizer.decode([tokenizer.bosTokenId])}${args.blind ? "" : IMAGE_PLACEHOLDER}${caption}${tokenizer.decode([tokenizer.eosTokenId])}`);
  const expanded = expandImages(tokenizer, pieces, [0, Infinity], imageTokens);
  if (expanded.inputIds.length > maxLength) throw new Error(`plain format: ${expanded.inputIds.length} tokens (${expanded.images} × ${imageTokens} image tokens included), over maxLength ${maxLength}`);
  return { ...expanded, droppedRounds: 0 };
}

function resolveArgs(args: Pick<ConversationArgs, "imageTokens" | "maxLength">): { imageTokens: number; maxLength: number } {
  if (!Number.isInteger(args?.imageTokens) || args.imageTokens <= 0) throw new Error(`conversation: imageTokens must be a positive integer (the model's imageTokensPerImage), got ${args?.imageTokens}`);
  const maxLength = args.maxLength ?? 256;
  if (!Number.isInteger(maxLength) || maxLength <= 0) throw new Error(`conversation: maxLength must be a positive integer, got ${maxLength}`);
  return { imageTokens: args.imageTokens, maxLength };
}

/** Messages → expanded ids and labels, with the mismatch check. */
function encodeMessages(tokenizer: TextTokenizer, messages: readonly ChatMessage[], imageTokens: number): Omit<TokenizedConversation, "droppedRounds"> {
  const segments = conversationSegments(tokenizer, messages);
  const pieces = segments.map((segment) => tokenizer.encode(segment.text));
  checkPiecesMatch(tokenizer, pieces, segments.map((s) => s.text).join(""));
  return expandImages(tokenizer, pieces, segments.map((s) => s.supervisedTokens), imageTokens);
}

/**
 * The pieces' tokens, concatenated, must equal the whole text's tokens
 * (LLaVA's "tokenization mismatch" check); errors name the first difference.
 */
export function checkPiecesMatch(tokenizer: TextTokenizer, pieces: readonly (readonly number[])[], wholeText: string): void {
  const joined = pieces.flat();
  const whole = tokenizer.encode(wholeText);
  if (joined.length === whole.length && joined.every((id, k) => id === whole[k])) return;
  let at = 0;
  while (at < joined.length && at < whole.length && joined[at] === whole[at]) at++;
  const show = (ids: readonly number[]) => JSON.stringify(ids.slice(Math.max(0, at - 2), at + 4).map((id) => tokenizer.decode([id])));
  throw new TokenizationMismatchError(
    `tokenization mismatch: the answer mask's pieces give ${joined.length} tokens but the whole conversation ${whole.length}; first difference at token ${at}: pieces ${show(joined)} vs whole ${show(whole)}. ` +
      "The chat template joins messages so that tokens merge across a turn boundary; end each turn with a special token or a separator.",
  );
}

/** Each `imageTokenId` in `ids` repeated `imageTokens` times (one position per image feature vector). [T] → [T + images·(imageTokens − 1)] */
export function expandImageTokens(ids: readonly number[], imageTokenId: number, imageTokens: number): number[] {
  if (!Number.isInteger(imageTokens) || imageTokens <= 0) throw new Error(`expandImageTokens: imageTokens must be a positive integer, got ${imageTokens}`);
  return ids.flatMap((id) => (id === imageTokenId ? new Array<number>(imageTokens).fill(imageTokenId) : [id]));
}

/** Concatenates pieces, expanding `<image>` to `imageTokens` ids; labels on the first `supervisedTokens[k]` tokens of piece k. */
function expandImages(tokenizer: TextTokenizer, pieces: readonly (readonly number[])[], supervisedTokens: readonly number[], imageTokens: number): Omit<TokenizedConversation, "droppedRounds"> {
  const imageId = tokenizer.tokenId(IMAGE_PLACEHOLDER);
  const inputIds: number[] = [];
  const labels: number[] = [];
  let images = 0;
  pieces.forEach((piece, k) => {
    for (const [index, id] of piece.entries()) {
      const supervised = index < supervisedTokens[k];
      if (id === imageId) {
        if (supervised) throw new Error(`conversation: an answer holds ${IMAGE_PLACEHOLDER}; images belong in user turns`);
        images++;
        for (let n = 0; n < imageTokens; n++) {
          inputIds.push(imageId);
          labels.push(IGNORE_INDEX);
        }
        continue;
      }
      inputIds.push(id);
      labels.push(supervised ? id : IGNORE_INDEX);
    }
  });
  return { inputIds, labels, images };
}

/** A padded batch as plain arrays ([B][T] each). */
export interface PaddedBatch {
  readonly inputIds: number[][];
  readonly labels: number[][];
  /** 1 real token, 0 padding. */
  readonly attentionMask: number[][];
}

/**
 * Pads examples to the longest (right padding for training: labels
 * {@link IGNORE_INDEX}, mask 0; left padding for generation prompts).
 * Examples are never cut here: {@link tokenizeConversation} fits them.
 */
export function padConversations(examples: readonly Pick<TokenizedConversation, "inputIds" | "labels">[], padTokenId: number, padSide: "right" | "left" = "right"): PaddedBatch {
  if (examples.length === 0) throw new Error("padConversations: no examples");
  if (padSide !== "right" && padSide !== "left") throw new Error(`padConversations: padSide must be "right" or "left", got ${JSON.stringify(padSide)}`);
  const length = Math.max(...examples.map((e) => e.inputIds.length));
  const out: { inputIds: number[][]; labels: number[][]; attentionMask: number[][] } = { inputIds: [], labels: [], attentionMask: [] };
  examples.forEach((example, k) => {
    if (example.labels.length !== example.inputIds.length) throw new Error(`padConversations: example ${k} has ${example.inputIds.length} ids but ${example.labels.length} labels`);
    const pad = length - example.inputIds.length;
    const side = <T>(values: readonly T[], fill: T) => (padSide === "right" ? [...values, ...new Array<T>(pad).fill(fill)] : [...new Array<T>(pad).fill(fill), ...values]);
    out.inputIds.push(side(example.inputIds, padTokenId));
    out.labels.push(side(example.labels, IGNORE_INDEX));
    out.attentionMask.push(side(new Array<number>(example.inputIds.length).fill(1), 0));
  });
  return out;
}
