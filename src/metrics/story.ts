/**
 * Story metrics made possible by the world's exact annotations: what each
 * frame holds and which event happened. A generated story is read by the
 * shared parser (`story_mentions.ts`); sentence k is aligned with frame k.
 *
 * How they relate to the storytelling literature:
 * - **Grounding** (precision and recall of the objects and events a sentence
 *   mentions, against its frame) is what RoViST's *visual grounding* score
 *   (Wang et al., "RoViST: Learning Robust Metrics for Visual Storytelling",
 *   2022) estimates by matching noun phrases to image regions with a learned
 *   model; here the frame's objects and event are known exactly, so it is
 *   counted, not estimated.
 * - **Hallucination rate** (object mentions not in the frame) is CHAIR-i
 *   (Rohrbach et al., "Object Hallucination in Image Captioning", 2018) per frame.
 * - **Repetition** (n-grams of a sentence already said in an earlier one) is the
 *   inter-sentence half of RoViST's *non-redundancy* (Jaccard similarity of
 *   sentences), in the n-gram form of Welleck et al.'s repetition rates
 *   ("Neural Text Generation with Unlikelihood Training", 2020).
 * - **Order** (events told in the frames' order) stands for RoViST's
 *   *coherence*, which scores sentence order with a trained language model;
 *   here each told event is matched to the frame where it happened and
 *   order = the fraction of event pairs told in frame order (Kendall's
 *   (τ + 1)/2): 1 in order, about 0.5 for a shuffled story.
 *
 * Corpus values are micro-averages (summed counts), as CHAIR-i is.
 */
import type { ColorName, ShapeName, SizeName } from "../data/vocabulary";
import { objectRadius } from "../data/scene";
import type { Story, StoryEvent } from "../data/story";
import { storyMentions, type ObjectMention, type SentenceMentions } from "./story_mentions";
import { ngrams } from "./ngrams";
import { bleu4 } from "./bleu";
import { ciderD } from "./cider";
import { rougeL } from "./rouge";

/** An annotated object of a frame (positions optional: they tell which object moved). */
export interface FrameObject {
  readonly color: ColorName;
  readonly shape: ShapeName;
  /** With x, y: tells which object a "meet" went to. */
  readonly size?: SizeName;
  readonly x?: number;
  readonly y?: number;
}

/** One frame's annotation, as the `stories` set stores it (`frames[k].event`, `frames[k].objects`). */
export interface FrameAnnotation {
  readonly event: StoryEvent;
  readonly objects: readonly FrameObject[];
}

/** The annotations of a generated {@link Story} (its scenes' objects). */
export function frameAnnotations(story: Story): FrameAnnotation[] {
  return story.frames.map((frame) => ({ event: frame.event, objects: frame.scene.objects }));
}

const key = (object: { color?: ColorName; shape: ShapeName }) => `${object.color ?? "?"} ${object.shape}`;

/** Whether a mention names `object` (a shape-only mention names any object of that shape). */
function names(mention: ObjectMention, object: FrameObject): boolean {
  return mention.shape === object.shape && (mention.color === undefined || mention.color === object.color);
}

/**
 * The objects each frame's event is about, from consecutive annotations:
 * start → every object; arrive → the new one; leave → the one gone (from the
 * frame before); move → the one whose position changed; meet → that one and
 * the object it went to (the nearest other one).
 */
export function frameActors(frames: readonly FrameAnnotation[], canvas = 64): FrameObject[][] {
  return frames.map((frame, k) => {
    const previous = k > 0 ? frames[k - 1].objects : [];
    const before = new Map(previous.map((object) => [key(object), object]));
    const now = new Map(frame.objects.map((object) => [key(object), object]));
    switch (frame.event) {
      case "start":
        return [...frame.objects];
      case "arrive":
        return frame.objects.filter((object) => !before.has(key(object)));
      case "leave":
        return previous.filter((object) => !now.has(key(object)));
      case "move":
      case "meet": {
        const moved = frame.objects.filter((object) => {
          const old = before.get(key(object));
          return old !== undefined && (old.x !== object.x || old.y !== object.y);
        });
        if (frame.event === "move" || moved.length !== 1 || moved[0].x === undefined) return moved;
        // The generator puts the mover at radius(a) + radius(b) + 4 from its target b (data/story.ts): the
        // target is the object nearest that gap (the nearest object when sizes are unknown).
        const actor = moved[0];
        const others = frame.objects.filter((object) => object !== actor);
        const gap = (object: FrameObject) => {
          const distance = Math.hypot((object.x ?? 0) - actor.x!, (object.y ?? 0) - actor.y!);
          const meeting =
            actor.size && object.size ? objectRadius(actor.size, canvas) + objectRadius(object.size, canvas) + 4 : 0;
          return Math.abs(distance - meeting);
        };
        const target = others.reduce<FrameObject | undefined>((best, o) => (!best || gap(o) < gap(best) ? o : best), undefined);
        return target ? [actor, target] : [actor];
      }
    }
  });
}

/** Counts of one frame (or summed over frames). */
export interface GroundingCounts {
  /** Object mentions, and those that name an object of the frame (or the one that just left). */
  objectMentions: number;
  groundedObjectMentions: number;
  /** Objects the frame's event is about ({@link frameActors}), and those the sentence names. */
  requiredObjects: number;
  foundObjects: number;
  /** Events told, and those that are the frame's event. */
  eventMentions: number;
  correctEventMentions: number;
  /** 1 per frame (its event), and 1 when the sentence tells it. */
  requiredEvents: number;
  foundEvents: number;
}

/** Grounding of one story: per frame counts, and sentences past the last frame (their mentions ground in nothing). */
export interface StoryGrounding {
  readonly perFrame: GroundingCounts[];
  readonly extraSentences: GroundingCounts;
}

const zeroCounts = (): GroundingCounts => ({
  objectMentions: 0,
  groundedObjectMentions: 0,
  requiredObjects: 0,
  foundObjects: 0,
  eventMentions: 0,
  correctEventMentions: 0,
  requiredEvents: 0,
  foundEvents: 0,
});

/** Checks an annotation at the boundary, naming the bad frame. */
function checkAnnotations(frames: readonly FrameAnnotation[], where: string): void {
  if (!Array.isArray(frames) || frames.length === 0)
    throw new Error(`${where}: expected a non-empty list of frame annotations, got ${JSON.stringify(frames)}`);
  frames.forEach((frame, k) => {
    if (!frame || !Array.isArray(frame.objects) || typeof frame.event !== "string")
      throw new Error(`${where}: frame ${k} must be { event, objects: [...] }, got ${JSON.stringify(frame)}`);
  });
}

/** Per-frame grounding counts of a story (sentence k against frame k). */
export function storyGrounding(story: string | readonly SentenceMentions[], frames: readonly FrameAnnotation[]): StoryGrounding {
  checkAnnotations(frames, "storyGrounding");
  const sentences = typeof story === "string" ? storyMentions(story) : story;
  const actors = frameActors(frames);
  const perFrame = frames.map((frame, k) => {
    const counts = zeroCounts();
    const sentence = sentences[k] as SentenceMentions | undefined;
    const supported = [...frame.objects, ...actors[k]];
    counts.requiredObjects = actors[k].length;
    counts.requiredEvents = 1;
    if (!sentence) return counts;
    counts.objectMentions = sentence.objects.length;
    counts.groundedObjectMentions = sentence.objects.filter((mention) =>
      supported.some((object) => names(mention, object)),
    ).length;
    counts.foundObjects = actors[k].filter((object) => sentence.objects.some((mention) => names(mention, object))).length;
    counts.eventMentions = sentence.events.length;
    counts.correctEventMentions = sentence.events.filter((event) => event === frame.event).length;
    counts.foundEvents = sentence.events.includes(frame.event) ? 1 : 0;
    return counts;
  });
  const extraSentences = zeroCounts();
  for (const sentence of sentences.slice(frames.length)) {
    extraSentences.objectMentions += sentence.objects.length;
    extraSentences.eventMentions += sentence.events.length;
  }
  return { perFrame, extraSentences };
}

/** Sums counts. */
export function sumGroundingCounts(counts: readonly GroundingCounts[]): GroundingCounts {
  const total = zeroCounts();
  for (const c of counts) for (const name of Object.keys(total) as (keyof GroundingCounts)[]) total[name] += c[name];
  return total;
}

/** Rates from counts. A story that names nothing has precision 0 (silence is not grounding) and hallucination 0. */
export interface GroundingRates {
  /** (grounded objects + correct events) / all mentions. */
  precision: number;
  /** (found objects + found events) / required. */
  recall: number;
  objectPrecision: number;
  objectRecall: number;
  eventPrecision: number;
  eventRecall: number;
  /** Object mentions naming nothing in their frame / object mentions (CHAIR-i). */
  hallucinationRate: number;
}

export function groundingRates(c: GroundingCounts): GroundingRates {
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  return {
    precision: ratio(c.groundedObjectMentions + c.correctEventMentions, c.objectMentions + c.eventMentions),
    recall: ratio(c.foundObjects + c.foundEvents, c.requiredObjects + c.requiredEvents),
    objectPrecision: ratio(c.groundedObjectMentions, c.objectMentions),
    objectRecall: ratio(c.foundObjects, c.requiredObjects),
    eventPrecision: ratio(c.correctEventMentions, c.eventMentions),
    eventRecall: ratio(c.foundEvents, c.requiredEvents),
    hallucinationRate: ratio(c.objectMentions - c.groundedObjectMentions, c.objectMentions),
  };
}

/** Repeated n-grams of a story: those of a sentence already in an earlier sentence, out of all its n-grams. */
export interface RepetitionCounts {
  repeated: number;
  total: number;
}

/** Across-sentence repetition of one story (n-grams within a sentence are not compared). Default n = 4: "the red star" may recur in a good story. */
export function storyRepetition(story: string | readonly SentenceMentions[], n = 4): RepetitionCounts {
  if (!Number.isInteger(n) || n < 1) throw new Error(`storyRepetition: n must be an integer ≥ 1, got ${JSON.stringify(n)}`);
  const sentences = typeof story === "string" ? storyMentions(story) : story;
  const seen = new Set<string>();
  let repeated = 0;
  let total = 0;
  for (const sentence of sentences) {
    const grams = ngrams(sentence.tokens, n);
    total += grams.length;
    repeated += grams.filter((gram) => seen.has(gram)).length;
    for (const gram of grams) seen.add(gram);
  }
  return { repeated, total };
}

/** Told events matched to frames, and the pairs told in frame order. */
export interface OrderCounts {
  /** Frame index of each told event that matched a frame, in telling order. */
  matchedFrames: number[];
  concordantPairs: number;
  pairs: number;
}

/**
 * Order of one story: each told event (with the sentence's first object as its
 * actor, when it names one) is matched to the earliest unused frame with that
 * event and actor; pairs of matched events told in frame order count as concordant.
 */
export function storyOrder(story: string | readonly SentenceMentions[], frames: readonly FrameAnnotation[]): OrderCounts {
  checkAnnotations(frames, "storyOrder");
  const sentences = typeof story === "string" ? storyMentions(story) : story;
  const actors = frameActors(frames);
  const used = new Array<boolean>(frames.length).fill(false);
  const matchedFrames: number[] = [];
  for (const sentence of sentences) {
    const actor = sentence.objects[0];
    for (const event of sentence.events) {
      const frame = frames.findIndex(
        (annotation, k) =>
          !used[k] && annotation.event === event && (actor === undefined || actors[k].some((object) => names(actor, object))),
      );
      if (frame < 0) continue;
      used[frame] = true;
      matchedFrames.push(frame);
    }
  }
  let concordantPairs = 0;
  let pairs = 0;
  for (let i = 0; i < matchedFrames.length; i++) {
    for (let j = i + 1; j < matchedFrames.length; j++) {
      pairs++;
      if (matchedFrames[i] < matchedFrames[j]) concordantPairs++;
    }
  }
  return { matchedFrames, concordantPairs, pairs };
}

/** Corpus story metrics (see the file header); caption metrics too when references are given. */
export interface StoryMetrics extends GroundingRates {
  /** Repeated n-grams / n-grams across sentences ({@link storyRepetition}). */
  repetition: number;
  /** Concordant / all pairs of matched events ({@link storyOrder}); NaN when no story matched two events. */
  order: number;
  /** Stories scored. */
  stories: number;
  /** With references: BLEU-4, CIDEr-D and ROUGE-L of each story against its reference stories. */
  bleu4?: number;
  ciderD?: number;
  rougeL?: number;
}

/** Options of {@link storyMetrics}. */
export interface StoryMetricsArgs {
  /** Per story, its reference stories (whole texts) for BLEU-4, CIDEr-D and ROUGE-L. Default none. */
  readonly references?: readonly (readonly string[])[];
  /** n of the repetition measure. Default 4. */
  readonly repetitionN?: number;
}

/** Story metrics of generated stories against their frames' annotations (one annotation list per story). */
export function storyMetrics(
  stories: readonly string[],
  annotations: readonly (readonly FrameAnnotation[])[],
  args: StoryMetricsArgs = {},
): StoryMetrics {
  if (!Array.isArray(stories) || !Array.isArray(annotations) || stories.length !== annotations.length)
    throw new Error(
      `storyMetrics: expected one annotation list per story, got ${stories?.length} stories and ${annotations?.length} annotation lists`,
    );
  if (stories.length === 0) throw new Error("storyMetrics: no stories to score");
  const grounding: GroundingCounts[] = [];
  let repeated = 0;
  let total = 0;
  let concordant = 0;
  let pairs = 0;
  stories.forEach((story, i) => {
    if (typeof story !== "string") throw new Error(`storyMetrics: story ${i} must be a string, got ${JSON.stringify(story)}`);
    const sentences = storyMentions(story);
    const { perFrame, extraSentences } = storyGrounding(sentences, annotations[i]);
    grounding.push(...perFrame, extraSentences);
    const repetition = storyRepetition(sentences, args.repetitionN ?? 4);
    repeated += repetition.repeated;
    total += repetition.total;
    const order = storyOrder(sentences, annotations[i]);
    concordant += order.concordantPairs;
    pairs += order.pairs;
  });
  const metrics: StoryMetrics = {
    ...groundingRates(sumGroundingCounts(grounding)),
    repetition: total === 0 ? 0 : repeated / total,
    order: pairs === 0 ? NaN : concordant / pairs,
    stories: stories.length,
  };
  if (args.references) {
    metrics.bleu4 = bleu4(stories, args.references);
    metrics.ciderD = ciderD(stories, args.references);
    metrics.rougeL = rougeL(stories, args.references);
  }
  return metrics;
}
