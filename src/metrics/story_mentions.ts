/**
 * What a story says, read over the synthetic world's vocabulary: its
 * sentences, and per sentence the objects it names (a color then a shape,
 * sizes and counts allowed between: "the large red star", "two blue circles";
 * a shape alone, "the star", names any object of that shape) and the events
 * it tells (arrive, leave, move, meet, and the opening "start"). The story
 * metrics (`story.ts`) all read stories through this parser, so they agree on
 * what a sentence mentions.
 *
 * The world's words come from `data/vocabulary.ts`; the event verbs are the
 * ones the story generator (`data/story.ts`) writes, with their base and past
 * forms. "left" is a place word here ("on the left"), never the verb.
 */
import { COLOR_NAMES, SHAPE_NAMES, SIZE_NAMES, NUMBER_WORDS, type ColorName, type ShapeName } from "../data/vocabulary";
import type { StoryEvent } from "../data/story";
import { ptbTokenize } from "./ngrams";

/** An object a sentence names; `color` undefined when only the shape was said. */
export interface ObjectMention {
  readonly color: ColorName | undefined;
  readonly shape: ShapeName;
}

/** One sentence's mentions. */
export interface SentenceMentions {
  /** The sentence's tokens (PTB-tokenised, lower case, punctuation dropped). */
  readonly tokens: readonly string[];
  /** Objects in the order named. */
  readonly objects: readonly ObjectMention[];
  /** Events told, in the order of their verbs ("start" when the sentence opens a scene: "there is", "in the picture"). */
  readonly events: readonly StoryEvent[];
}

/** Verb forms of each event. */
export const EVENT_WORDS: Readonly<Record<Exclude<StoryEvent, "start">, readonly string[]>> = {
  arrive: ["arrive", "arrives", "arrived", "arriving", "appears", "appear", "appeared", "enters", "comes"],
  leave: ["leave", "leaves", "leaving", "disappears", "exits", "goes away"],
  move: ["move", "moves", "moved", "moving"],
  meet: ["meet", "meets", "met", "meeting"],
};

const COLORS = new Set<string>(COLOR_NAMES);
const SIZES = new Set<string>(SIZE_NAMES);
const COUNTS = new Set<string>(NUMBER_WORDS);
const SHAPE_OF = new Map<string, ShapeName>(
  SHAPE_NAMES.flatMap((shape) => [[shape, shape] as const, [`${shape}s`, shape] as const]),
);

/** A story's sentences: split after ".", "!" or "?" (empty pieces dropped). */
export function splitSentences(story: string): string[] {
  if (typeof story !== "string") throw new Error(`splitSentences: story must be a string, got ${typeof story}`);
  return story
    .split(/(?<=[.!?])\s*/)
    .map((sentence) => sentence.trim())
    .filter((sentence) => ptbTokenize(sentence).length > 0);
}

/** The objects and events of one sentence. */
export function sentenceMentions(sentence: string): SentenceMentions {
  const tokens = ptbTokenize(sentence);
  const objects: ObjectMention[] = [];
  const events: StoryEvent[] = [];
  let pendingColor: ColorName | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const shape = SHAPE_OF.get(token);
    if (shape) {
      objects.push({ color: pendingColor, shape });
      pendingColor = undefined;
      continue;
    }
    if (COLORS.has(token)) pendingColor = token as ColorName;
    else if (!SIZES.has(token) && !COUNTS.has(token)) pendingColor = undefined; // a color binds only to the next shape word
    if (token === "picture" || (i === 0 && token === "there")) events.push("start");
    for (const [event, words] of Object.entries(EVENT_WORDS)) {
      const matched = words.some((word) => {
        const parts = word.split(" ");
        return parts.every((part, k) => tokens[i + k] === part);
      });
      if (matched) events.push(event as StoryEvent);
    }
  }
  return { tokens, objects, events: [...new Set(events)] };
}

/** Every sentence of a story with its mentions. */
export function storyMentions(story: string): SentenceMentions[] {
  return splitSentences(story).map(sentenceMentions);
}

/** "red star", or "star" for a shape-only mention. */
export function mentionName(mention: ObjectMention): string {
  return mention.color ? `${mention.color} ${mention.shape}` : mention.shape;
}
