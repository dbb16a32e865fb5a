/**
 * Story metrics (lab 05) on hand-computed cases, and on the world's stored
 * stories: each reference story is perfectly grounded and in order against
 * its own annotation, and shuffling its sentences breaks the order.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { sentenceMentions, splitSentences, storyMentions } from "../src/metrics/story_mentions";
import { longestCommonSubsequence, rougeL, rougeLPerItem } from "../src/metrics/rouge";
import {
  frameActors,
  frameAnnotations,
  groundingRates,
  storyGrounding,
  storyMetrics,
  storyOrder,
  storyRepetition,
  sumGroundingCounts,
  type FrameAnnotation,
} from "../src/metrics/story";
import { sampleStory } from "../src/data/story";
import { storyText } from "../src/data/story_prompt";
import { Random } from "../src/util/random";

describe("story mentions", () => {
  it("reads colored shapes (sizes and counts between), shape-only mentions and event verbs; 'left' is a place", () => {
    expect(splitSentences("the red star moves to the left. two blue circles are in the picture.")).toHaveLength(2);
    const [first, second] = storyMentions("the large red star moves to the left. two blue circles are in the picture.");
    expect(first.objects).toEqual([{ color: "red", shape: "star" }]);
    expect(first.events).toEqual(["move"]);
    expect(second.objects).toEqual([{ color: "blue", shape: "circle" }]);
    expect(second.events).toEqual(["start"]);
    expect(sentenceMentions("the star leaves.")).toMatchObject({
      objects: [{ color: undefined, shape: "star" }],
      events: ["leave"],
    });
    expect(sentenceMentions("a red and blue circle go to meet.").objects).toEqual([{ color: "blue", shape: "circle" }]);
    expect(sentenceMentions("there is a green square on the left.").events).toEqual(["start"]);
  });
});

describe("ROUGE-L", () => {
  it("is the F-measure (β = 1.2) of the best LCS precision and recall over references", () => {
    expect(longestCommonSubsequence(["a", "c", "d", "e", "f"], ["a", "b", "c", "d"])).toBe(3);
    // LCS("a b c d", "a c d e f") = 3: P = 3/4, R = 3/5.
    const one = (2.44 * 0.75 * 0.6) / (0.6 + 1.44 * 0.75);
    expect(rougeLPerItem(["a b c d"], [["a c d e f"]])[0]).toBeCloseTo(one, 12);
    // A second reference "b c" gives R = 1: P and R are maximised separately.
    const two = (2.44 * 0.75 * 1) / (1 + 1.44 * 0.75);
    expect(rougeL(["a b c d", "a b c d"], [["a c d e f"], ["a c d e f", "b c"]])).toBeCloseTo((one + two) / 2, 12);
    expect(rougeL(["x y"], [["a b"]])).toBe(0);
    expect(() => rougeL(["a"], [])).toThrow(/one list of references per candidate, got 1 candidates and 0/);
  });
});

/** Frame 0: a red star and a blue circle; frame 1: a green square arrives; frame 2: the red star leaves. */
const FRAMES: FrameAnnotation[] = [
  {
    event: "start",
    objects: [
      { color: "red", shape: "star", x: 10, y: 10 },
      { color: "blue", shape: "circle", x: 40, y: 40 },
    ],
  },
  {
    event: "arrive",
    objects: [
      { color: "red", shape: "star", x: 10, y: 10 },
      { color: "blue", shape: "circle", x: 40, y: 40 },
      { color: "green", shape: "square", x: 50, y: 10 },
    ],
  },
  {
    event: "leave",
    objects: [
      { color: "blue", shape: "circle", x: 40, y: 40 },
      { color: "green", shape: "square", x: 50, y: 10 },
    ],
  },
];
const REFERENCE = "a red star and a blue circle are in the picture. a green square arrives at the top. the red star leaves.";

describe("grounding and hallucination", () => {
  it("derives each frame's actors from consecutive annotations", () => {
    const actors = frameActors(FRAMES).map((list) => list.map((o) => `${o.color} ${o.shape}`));
    expect(actors).toEqual([["red star", "blue circle"], ["green square"], ["red star"]]);
    const meet: FrameAnnotation[] = [
      FRAMES[1],
      { event: "meet", objects: [{ color: "red", shape: "star", x: 36, y: 40 }, FRAMES[1].objects[1], FRAMES[1].objects[2]] },
    ];
    expect(frameActors(meet)[1].map((o) => o.shape)).toEqual(["star", "circle"]); // the mover and the nearest object
  });

  it("the reference is fully grounded; a flawed story gets the hand-counted rates", () => {
    const reference = groundingRates(sumGroundingCounts(storyGrounding(REFERENCE, FRAMES).perFrame));
    expect(reference).toMatchObject({ precision: 1, recall: 1, hallucinationRate: 0 });
    // Frame 0: red star ✓, yellow circle ✗, start ✓; frame 1: green square ✓, "moves" ✗;
    // frame 2: red star ✓ (it just left), leave ✓; a fourth sentence grounds in no frame (purple star, arrive).
    const story =
      "a red star and a yellow circle are in the picture. a green square moves. the red star leaves. the purple star arrives.";
    const { perFrame, extraSentences } = storyGrounding(story, FRAMES);
    expect(extraSentences).toMatchObject({ objectMentions: 1, eventMentions: 1 });
    const rates = groundingRates(sumGroundingCounts([...perFrame, extraSentences]));
    expect(rates.objectPrecision).toBeCloseTo(3 / 5, 12);
    expect(rates.eventPrecision).toBeCloseTo(2 / 4, 12);
    expect(rates.precision).toBeCloseTo(5 / 9, 12);
    expect(rates.objectRecall).toBeCloseTo(3 / 4, 12); // blue circle of the opening missed
    expect(rates.eventRecall).toBeCloseTo(2 / 3, 12);
    expect(rates.recall).toBeCloseTo(5 / 7, 12);
    expect(rates.hallucinationRate).toBeCloseTo(2 / 5, 12);
    expect(groundingRates(sumGroundingCounts(storyGrounding("", FRAMES).perFrame))).toMatchObject({
      precision: 0,
      recall: 0,
      hallucinationRate: 0,
    });
  });
});

describe("repetition and order", () => {
  it("repetition counts n-grams already said in an earlier sentence", () => {
    // Sentence 2's 4-grams: 3 of 4 repeat sentence 1's; 8 in all.
    expect(storyRepetition("the red star moves to the left. the red star moves to the right.")).toEqual({
      repeated: 3,
      total: 8,
    });
    expect(storyRepetition("the red star moves to the left. the red star moves to the right.", 1)).toEqual({
      repeated: 6,
      total: 14,
    });
    expect(storyRepetition(REFERENCE)).toEqual({ repeated: 0, total: 13 }); // 8 + 4 + 1 4-grams
    expect(() => storyRepetition(REFERENCE, 0)).toThrow(/n must be an integer ≥ 1, got 0/);
  });

  it("order is the fraction of told-event pairs in frame order", () => {
    expect(storyOrder(REFERENCE, FRAMES)).toEqual({ matchedFrames: [0, 1, 2], concordantPairs: 3, pairs: 3 });
    const reversed = "the red star leaves. a green square arrives. a red star and a blue circle are in the picture.";
    expect(storyOrder(reversed, FRAMES)).toEqual({ matchedFrames: [2, 1, 0], concordantPairs: 0, pairs: 3 });
    // An event about the wrong object does not match: "the blue circle leaves" (the red star left).
    expect(storyOrder("the blue circle leaves.", FRAMES).matchedFrames).toEqual([]);
  });
});

describe("on the world's stories", () => {
  const file = path.join(__dirname, "..", "data/world/stories/test.jsonl");
  const records = fs
    .readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { frames: (FrameAnnotation & { sentence: string })[] });

  it("every reference story is grounded, complete and in order; shuffled sentences are not", () => {
    const stories = records.map((record) => storyText(record));
    const annotations = records.map((record) => record.frames);
    const reference = storyMetrics(stories, annotations, { references: stories.map((story) => [story]) });
    expect(reference).toMatchObject({ precision: 1, recall: 1, hallucinationRate: 0, order: 1, stories: records.length });
    expect(reference.bleu4).toBeCloseTo(1, 6);
    expect(reference.rougeL).toBeCloseTo(1, 12);
    const random = new Random(3);
    const shuffled = records.map((record) => {
      const sentences = record.frames.map((frame) => frame.sentence);
      for (let i = sentences.length - 1; i > 0; i--) {
        const j = random.int(0, i + 1);
        [sentences[i], sentences[j]] = [sentences[j], sentences[i]];
      }
      return sentences.join(" ");
    });
    const baseline = storyMetrics(shuffled, annotations, { references: stories.map((story) => [story]) });
    expect(baseline.order).toBeGreaterThan(0.35);
    expect(baseline.order).toBeLessThan(0.65); // about (τ + 1)/2 = 0.5 for a random order
    expect(baseline.precision).toBeLessThan(0.9); // sentences meet the wrong frames
    expect(baseline.hallucinationRate).toBeGreaterThan(0);
    expect(baseline.rougeL!).toBeLessThan(reference.rougeL!);
  });

  it("a generated story's annotations work the same way", () => {
    const story = sampleStory(new Random(7));
    expect(storyMetrics([storyText(story)], [frameAnnotations(story)])).toMatchObject({ precision: 1, recall: 1, order: 1 });
    expect(() => storyMetrics(["a."], [])).toThrow(/one annotation list per story, got 1 stories and 0/);
  });
});
