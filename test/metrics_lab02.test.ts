/**
 * Lab 02's metrics on hand-computed cases: POPE (question building with
 * random, popular and adversarial negatives; its answer rule and scores),
 * classification and sentiment (accuracy, per-class P/R/F1, macro-F1, the
 * face/text-disagreeing subset), medical findings field by field, and code
 * generation by execution.
 */
import { describe, expect, it } from "vitest";
import * as path from "node:path";
import { readJsonlFile } from "../src/data/world";
import { buildPopeQuestions, parseYesNo, popeMetrics, popeQuestion, type PopeImage } from "../src/metrics/pope";
import { classificationMetrics, parseClass, sentimentMetrics, sentimentRuleBaselines } from "../src/metrics/classification";
import { medicalFindingsMetrics, parseFindings } from "../src/metrics/medical_findings";
import { normalizeProgram, programMetrics } from "../src/metrics/program";

const WORLD = path.join(__dirname, "../data/world");

describe("POPE", () => {
  const images: PopeImage[] = [
    {
      id: "a",
      objects: [
        { color: "red", shape: "star" },
        { color: "blue", shape: "circle" },
      ],
    },
    { id: "b", objects: [{ color: "red", shape: "star" }] },
    {
      id: "c",
      objects: [
        { color: "green", shape: "square" },
        { color: "green", shape: "square" },
        { color: "red", shape: "star" },
      ],
    },
  ];
  const present = (id: string) => new Set(images.find((i) => i.id === id)!.objects.map((o) => `${o.color} ${o.shape}`));

  it.each(["random", "popular", "adversarial"] as const)(
    "%s: balanced, the yes ones present and the no ones absent",
    (negatives) => {
      const questions = buildPopeQuestions(images, { negatives, seed: 1 });
      for (const image of images) {
        const mine = questions.filter((q) => q.imageId === image.id);
        const distinct = present(image.id).size;
        expect(mine.filter((q) => q.answer === "yes")).toHaveLength(distinct);
        expect(mine.filter((q) => q.answer === "no")).toHaveLength(distinct);
        for (const q of mine) expect(present(image.id).has(`${q.color} ${q.shape}`)).toBe(q.answer === "yes");
        expect(new Set(mine.map((q) => q.question)).size).toBe(mine.length);
      }
      expect(buildPopeQuestions(images, { negatives, seed: 1 })).toEqual(questions); // seeded
    },
  );

  it("popular negatives are the most frequent absent pairs; adversarial ones the confusable swaps", () => {
    // Frequencies: red star 3 images, blue circle 1, green square 1, the rest 0; ties in vocabulary order (green square before blue circle).
    const popular = buildPopeQuestions(images, { negatives: "popular" }).filter((q) => q.answer === "no");
    expect(popular.filter((q) => q.imageId === "a").map((q) => `${q.color} ${q.shape}`)).toEqual(["green square", "red circle"]);
    expect(popular.filter((q) => q.imageId === "b").map((q) => `${q.color} ${q.shape}`)).toEqual(["green square"]);
    // A red star's nearest miss is an orange star (a star has no confusable shape); a blue circle's a purple circle.
    const adversarial = buildPopeQuestions(images, { negatives: "adversarial" }).filter((q) => q.answer === "no");
    expect(adversarial.filter((q) => q.imageId === "b").map((q) => q.question)).toEqual([
      "is there an orange star in the image?",
    ]);
    expect(new Set(adversarial.filter((q) => q.imageId === "a").map((q) => `${q.color} ${q.shape}`))).toEqual(
      new Set(["orange star", "purple circle"]),
    );
    expect(popeQuestion("red", "star")).toBe("is there a red star in the image?");
    expect(() => buildPopeQuestions([{ id: "x", objects: [{ color: "pink", shape: "star" }] }], { negatives: "random" })).toThrow(
      /image "x" has an object .*pink/,
    );
    expect(() => buildPopeQuestions(images, { negatives: "hard" as never })).toThrow(
      /negatives must be one of random, popular, adversarial, got "hard"/,
    );
  });

  it("POPE's answer rule and metrics on a hand-computed case", () => {
    expect(["yes", "No, there is not.", "yes it is", "no", "there is a red star", "Not at all"].map(parseYesNo)).toEqual([
      "yes",
      "no",
      "yes",
      "no",
      "yes",
      "no",
    ]);
    // said yes, no, yes, no, yes against yes, no, no, yes, yes: TP 2, FP 1, TN 1, FN 1.
    const metrics = popeMetrics(
      ["yes", "No, there is not.", "yes it is", "no", "there is a red star"],
      ["yes", "no", "no", "yes", "yes"],
    );
    expect(metrics.accuracy).toBeCloseTo(3 / 5, 12);
    expect(metrics.precision).toBeCloseTo(2 / 3, 12);
    expect(metrics.recall).toBeCloseTo(2 / 3, 12);
    expect(metrics.f1).toBeCloseTo(2 / 3, 12);
    expect(metrics.yesRatio).toBeCloseTo(3 / 5, 12);
    // Always "yes": recall 1, precision = the share of yes questions, yes-ratio 1.
    const always = popeMetrics(["yes", "yes", "yes", "yes"], ["yes", "no", "yes", "no"]);
    expect([always.precision, always.recall, always.yesRatio, always.accuracy]).toEqual([0.5, 1, 1, 0.5]);
    expect(() => popeMetrics(["yes"], [])).toThrow(/1 answers but 0 questions/);
  });
});

describe("classification and sentiment", () => {
  it("accuracy, per-class P/R/F1 and macro-F1 on a hand-computed case (an unparsed answer is wrong)", () => {
    const classes = ["positive", "negative", "neutral"];
    const metrics = classificationMetrics(
      ["positive", "negative", undefined, "neutral", "positive"],
      ["positive", "neutral", "negative", "neutral", "negative"],
      classes,
    );
    expect(metrics.accuracy).toBeCloseTo(0.4, 12);
    expect(metrics.perClass.positive).toEqual({ precision: 0.5, recall: 1, f1: expect.closeTo(2 / 3, 12), support: 1 });
    expect(metrics.perClass.negative).toEqual({ precision: 0, recall: 0, f1: 0, support: 2 });
    expect(metrics.perClass.neutral).toEqual({ precision: 1, recall: 0.5, f1: expect.closeTo(2 / 3, 12), support: 2 });
    expect(metrics.macroF1).toBeCloseTo(4 / 9, 12);
    expect(metrics.confusion.negative["(none)"]).toBe(1);
    expect(() => classificationMetrics(["happy"], ["positive"], classes)).toThrow(/prediction 0 is "happy"/);
  });

  it("parses the first class word; scores the face/text-disagreeing items apart", () => {
    expect(parseClass("The overall sentiment is Neutral.", ["positive", "negative", "neutral"])).toBe("neutral");
    expect(parseClass("positive or negative", ["negative", "positive"])).toBe("positive");
    expect(parseClass("neutrally", ["neutral"])).toBeUndefined();
    const items = [
      { answer: "positive", label: "positive", face: "positive", textSentiment: "positive" },
      { answer: "negative", label: "negative", face: "negative", textSentiment: "negative" },
      { answer: "positive", label: "neutral", face: "positive", textSentiment: "negative" }, // disagree: mixed → neutral
      { answer: "negative", label: "negative", face: "neutral", textSentiment: "negative" }, // disagree
    ];
    const { all, disagreeing } = sentimentMetrics(items);
    expect(all.accuracy).toBeCloseTo(3 / 4, 12);
    expect(all.count).toBe(4);
    expect(disagreeing!.count).toBe(2);
    expect(disagreeing!.accuracy).toBeCloseTo(1 / 2, 12);
    // Disagreeing: "positive" for a neutral item (wrong), "negative" for a negative one (right): F1 negative 1, positive 0 (one FP, no support), neutral 0 (missed).
    expect(disagreeing!.macroF1).toBeCloseTo((1 + 0 + 0) / 3, 12);
    expect(sentimentMetrics(items.slice(0, 2)).disagreeing).toBeUndefined();
    // Rules: text only says positive, negative, negative, negative (items 1, 2, 4 right); face only positive, negative, positive, neutral (1, 2).
    const { textOnly, faceOnly } = sentimentRuleBaselines(items);
    expect(textOnly.all.accuracy).toBeCloseTo(3 / 4, 12);
    expect(faceOnly.all.accuracy).toBeCloseTo(2 / 4, 12);
    expect(textOnly.disagreeing!.accuracy).toBeCloseTo(1 / 2, 12);
    expect(faceOnly.disagreeing!.accuracy).toBe(0);
  });

  it("on the world's sentiment test split, each single-side rule is far from the combined label on disagreeing items", () => {
    const records = readJsonlFile(path.join(WORLD, "sentiment/test.jsonl"));
    const { textOnly, faceOnly } = sentimentRuleBaselines(
      records.map((r) => ({ label: r.label, face: r.face, textSentiment: r.text_sentiment })),
    );
    // Where they agree both rules are right; where they disagree, a rule is right only when the other side is neutral.
    const disagreeing = records.filter((r) => r.face !== r.text_sentiment);
    expect(textOnly.disagreeing!.count).toBe(disagreeing.length);
    expect(textOnly.disagreeing!.accuracy).toBeCloseTo(
      disagreeing.filter((r) => r.face === "neutral").length / disagreeing.length,
      12,
    );
    expect(faceOnly.disagreeing!.accuracy).toBeCloseTo(
      disagreeing.filter((r) => r.text_sentiment === "neutral").length / disagreeing.length,
      12,
    );
    expect(textOnly.disagreeing!.accuracy).toBeLessThan(0.6);
    expect(faceOnly.disagreeing!.accuracy).toBeLessThan(0.6);
  });
});

describe("medical findings", () => {
  it("parses every findings sentence of the world back to its annotated lesions", () => {
    const records = readJsonlFile(path.join(WORLD, "medical/test.jsonl"));
    for (const r of records) {
      const parsed = parseFindings(r.findings);
      expect(parsed.count, r.findings).toBe(r.lesions.length);
      expect(
        parsed.lesions.map((l) => `${l.location} ${l.size} ${l.appearance}`),
        r.findings,
      ).toEqual(r.lesions.map((l: any) => `${l.location} ${l.size} ${l.appearance}`));
    }
    const metrics = medicalFindingsMetrics(
      records.map((r) => r.findings),
      records.map((r) => r.lesions),
    );
    expect([metrics.countAccuracy, metrics.lesion.f1, metrics.location.precision, metrics.parsed]).toEqual([1, 1, 1, 1]);
  });

  it("field by field on a hand-computed case", () => {
    const truths = [
      [
        { location: "upper left", size: "large", appearance: "bright" },
        { location: "lower right", size: "small", appearance: "dark" },
      ],
      [],
      [{ location: "lower left", size: "small", appearance: "bright" }],
      [{ location: "upper right", size: "large", appearance: "dark" }],
    ];
    const predictions = [
      "two lesions: a large bright lesion in the upper left and a large dark lesion in the lower left.", // count right; UL all right; LL a false location
      "no lesions are seen. the organ looks normal.", // right
      "one lesion: a large bright lesion in the lower left.", // location and appearance right, size wrong
      "the scan is blurry", // nothing parsed: a missed lesion, no count
    ];
    const m = medicalFindingsMetrics(predictions, truths);
    expect(m.countAccuracy).toBeCloseTo(3 / 4, 12);
    expect(m.countMeanAbsoluteError).toBe(0);
    expect(m.parsed).toBeCloseTo(3 / 4, 12);
    // location: TP 2, FP 1, support 4; size: TP 1, FP 2; appearance: TP 2, FP 1; lesion: TP 1, FP 2.
    expect(m.location).toEqual({ precision: expect.closeTo(2 / 3, 12), recall: 0.5, f1: expect.closeTo(4 / 7, 12), support: 4 });
    expect(m.size).toEqual({ precision: expect.closeTo(1 / 3, 12), recall: 0.25, f1: expect.closeTo(2 / 7, 12), support: 4 });
    expect(m.appearance).toEqual(m.location);
    expect(m.lesion).toEqual(m.size);
    expect(() => medicalFindingsMetrics(["x"], [])).toThrow(/1 reports but 0 annotations/);
  });
});

describe("code generation by execution", () => {
  it("runs, same pixels, object match and exact program on a hand-made case", async () => {
    const reference = "background mist\ndiamond orange small at 51 34\nsquare orange large at 20 49";
    const predictions = [
      reference,
      "background mist\ndiamond orange small at 52 34\nsquare orange large at 20 49", // 1 px off: same objects, not the same pixels
      "draw an orange diamond", // does not run
      "  background mist\n\ndiamond  orange small at 51 34\nsquare orange large at 20 49\n", // the same program, other spacing
    ];
    const { metrics, scores } = await programMetrics(
      predictions,
      predictions.map(() => reference),
    );
    expect(scores[1].pixelAgreement).toBeGreaterThan(0.98);
    expect(scores[1].pixelAgreement).toBeLessThan(0.99);
    expect(scores[2].error).toMatch(/line 1 "draw an orange diamond"/);
    expect(metrics.runs).toBe(3 / 4);
    expect(metrics.samePixels).toBe(2 / 4);
    expect(metrics.objectMatch).toBe(3 / 4);
    expect(metrics.exactProgram).toBe(2 / 4);
    expect(metrics.pixelAgreement).toBeCloseTo((1 + scores[1].pixelAgreement + 0 + 1) / 4, 12);
    expect(normalizeProgram(" a  b \n\n c ")).toBe("a b\nc");
    await expect(programMetrics(["x"], [])).rejects.toThrow(/1 programs but 0 references/);
  });
});
