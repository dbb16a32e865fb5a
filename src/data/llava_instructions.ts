/**
 * The world's records as LLaVA training examples: stage 1 pairs an image with
 * one of its captions (`plain` format); stage 2 uses conversations, the
 * scenes' VQA questions as a multi-turn conversation (LLaVA's "conversation"
 * data, optionally opened by a brief-description request as in its
 * `llava_v1_5_mix665k` mixture) and the medical, code and sentiment sets'
 * stored `conversations` as they are.
 *
 * Paper: Liu et al., "Visual Instruction Tuning" (LLaVA, 2023), §3 and §4.
 * Reference: haotian-liu/LLaVA `llava/train/train.py` (`LazySupervisedDataset`).
 */
import { Random } from "../util/random";
import { IMAGE_PLACEHOLDER, type ConversationTurn } from "./conversation";

/** LLaVA's brief-description instructions (a few of its list). */
export const BRIEF_DESCRIPTION_PROMPTS = ["describe the image briefly.", "give a short description of the image.", "what is in this picture?", "summarize the image in a few words."] as const;

/** The instruction-tuning sets with stored conversations. */
export const CONVERSATION_SETS = ["medical", "code", "sentiment"] as const;
export type ConversationSet = (typeof CONVERSATION_SETS)[number];

/** A scenes record's fields used here. */
export interface SceneRecordForLlava {
  readonly id: string;
  readonly captions: readonly string[];
  readonly vqa: readonly { readonly question: string; readonly answer: string }[];
}

export interface SceneConversationArgs {
  /** Open with a brief-description request answered by a caption. Default true. */
  readonly captionTurn?: boolean;
}

/** Stage 1's caption for a scene: one of its captions, drawn with `random`. */
export function sceneCaption(record: SceneRecordForLlava, random: Random): string {
  if (!record.captions?.length) throw new Error(`scenes record ${JSON.stringify(record.id)} has no captions`);
  return record.captions[random.int(0, record.captions.length)];
}

/**
 * A scene's multi-turn conversation: (optionally) a brief description, then
 * each VQA question with its true answer; `<image>` opens the first human turn.
 */
export function sceneConversation(record: SceneRecordForLlava, random: Random, args: SceneConversationArgs = {}): ConversationTurn[] {
  const pairs: { instruction: string; response: string }[] = [];
  if (args.captionTurn ?? true) pairs.push({ instruction: BRIEF_DESCRIPTION_PROMPTS[random.int(0, BRIEF_DESCRIPTION_PROMPTS.length)], response: sceneCaption(record, random) });
  for (const q of record.vqa ?? []) pairs.push({ instruction: q.question, response: q.answer });
  if (pairs.length === 0) throw new Error(`scenes record ${JSON.stringify(record.id)} has no questions and no caption turn was asked for`);
  return conversationFromPairs(pairs);
}

/** Instruction–response pairs as LLaVA turns; `<image>` opens the first human turn (the world's stored conversations have this form). */
export function conversationFromPairs(pairs: readonly { readonly instruction: string; readonly response: string }[]): ConversationTurn[] {
  if (pairs.length === 0) throw new Error("conversationFromPairs: no instruction-response pairs");
  return pairs.flatMap((p, k) => [
    { from: "human" as const, value: k === 0 ? `${IMAGE_PLACEHOLDER}\n${p.instruction}` : p.instruction },
    { from: "gpt" as const, value: p.response },
  ]);
}

/** The code set's requests for a drawing program (one is drawn per record). */
export const CODE_INSTRUCTIONS = ["write the drawing program for this image.", "write code in the drawing language that draws this picture.", "what program draws this scene?"] as const;

/** The sentiment set's question about a picture posted with `text`. */
export function sentimentInstruction(text: string): string {
  return `the person posted this picture with the text "${text}" what is the overall sentiment: positive, negative or neutral?`;
}

/** A medical, code or sentiment record's stored conversation (validated). */
export function storedConversation(set: string, record: { id?: string; conversations?: unknown }): ConversationTurn[] {
  if (!(CONVERSATION_SETS as readonly string[]).includes(set)) throw new Error(`storedConversation: set must be one of ${CONVERSATION_SETS.join(", ")}, got ${JSON.stringify(set)}`);
  const turns = record.conversations;
  if (!Array.isArray(turns) || turns.length === 0) throw new Error(`${set} record ${JSON.stringify(record.id)} has no conversations`);
  if (typeof turns[0]?.value !== "string" || !turns[0].value.includes(IMAGE_PLACEHOLDER)) throw new Error(`${set} record ${JSON.stringify(record.id)}: the first turn has no ${IMAGE_PLACEHOLDER}`);
  return turns as ConversationTurn[];
}
