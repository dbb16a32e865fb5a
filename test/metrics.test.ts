/**
 * Caption and retrieval metrics against hand-computed cases (the arithmetic is
 * in the comments) and against numbers from pycocoevalcap's scorers.
 *
 * The "pycocoevalcap" numbers below were computed outside this test (Python is
 * not needed to run it) in two ways that agree to 2e-15: a Python 3 port of
 * coco-caption's `bleu_scorer.py` / `cider_scorer.py` fed our tokenised
 * captions, and an independent re-implementation from the published formulas.
 */
import { describe, expect, it } from "vitest";
import { vqaScores, chanceVqaScores } from "../src/data/vqa";
import {
  bleu,
  bleu4,
  bleuScores,
  chanceRecallAtK,
  ciderD,
  ciderDPerImage,
  clippedMatches,
  countNgramsUpTo,
  imageTextRecall,
  itmAccuracy,
  maxCounts,
  ngrams,
  ptbTokenize,
  recallAtK,
} from "../src/metrics";

/** Relative closeness for numbers that should equal pycocoevalcap's up to rounding (last few bits). */
function expectRelativelyClose(actual: number, expected: number, tolerance = 1e-12): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected)));
}

describe("ngrams", () => {
  it("tokenises as coco-caption's PTBTokenizer: lower case, punctuation split off and dropped", () => {
    expect(ptbTokenize("A red circle, left of the square.")).toEqual(["a", "red", "circle", "left", "of", "the", "square"]);
    expect(ptbTokenize("two shapes: a star; a circle...")).toEqual(["two", "shapes", "a", "star", "a", "circle"]);
    // PTB splits "n't" and clitics off and keeps them; hyphenated words and decimal numbers stay whole.
    expect(ptbTokenize("Don't move the light-blue star!")).toEqual(["do", "n't", "move", "the", "light-blue", "star"]);
    expect(ptbTokenize('it\'s 3.5 (roughly) -- "big"')).toEqual(["it", "'s", "3.5", "roughly", "big"]);
    expect(ptbTokenize("  \n ")).toEqual([]);
  });

  it("lists n-grams in order and counts them per order in order of first occurrence", () => {
    const tokens = ["a", "b", "a", "b", "a"];
    expect(ngrams(tokens, 2)).toEqual(["a b", "b a", "a b", "b a"]);
    expect(ngrams(tokens, 6)).toEqual([]);
    const counts = countNgramsUpTo(tokens, 3);
    expect([...counts[0]]).toEqual([
      ["a", 3],
      ["b", 2],
    ]);
    expect([...counts[1]]).toEqual([
      ["a b", 2],
      ["b a", 2],
    ]);
    expect([...counts[2]]).toEqual([
      ["a b a", 2],
      ["b a b", 1],
    ]);
    expect(() => ngrams(tokens, 0)).toThrow(/order must be an integer ≥ 1, got 0/);
  });

  it("clips matches by the largest count in any one reference", () => {
    // Candidate "the the the": "the" 3 times; references have it at most twice (in the second) → 2 matches.
    const candidate = countNgramsUpTo(["the", "the", "the"], 1)[0];
    const refs = [
      ["the", "cat"],
      ["the", "cat", "and", "the", "dog"],
    ].map((r) => countNgramsUpTo(r, 1)[0]);
    expect(maxCounts(refs).get("the")).toBe(2);
    expect(clippedMatches(candidate, maxCounts(refs))).toBe(2);
  });
});

describe("BLEU (pycocoevalcap Bleu(4), closest reference length)", () => {
  it("is 1 for a caption identical to its reference, whatever the case and punctuation", () => {
    // p_n = (m + 1e-15) / (m + 1e-9) ≈ 1 − 1e-9/m for every n; no brevity penalty.
    const scores = bleu(["A red circle on the left."], [["a red circle on the left"]]);
    for (const score of scores) expect(score).toBeCloseTo(1, 8);
  });

  it("clips repeated words and takes the geometric mean of the n-gram precisions", () => {
    // Candidate (8 tokens): the red circle is above the blue square
    // References: "a red circle above a blue square" (7), "the red circle is on top of the blue square" (10).
    // Closest reference length: |7−8| = 1 < |10−8| = 2 → r = 7 < c = 8 → no brevity penalty.
    // 1-grams: the×2 (clipped by ref 2's two "the"), red, circle, is, above, blue, square → 8/8
    // 2-grams: the red ✓, red circle ✓, circle is ✓, is above ✗, above the ✗, the blue ✓, blue square ✓ → 5/7
    // 3-grams: the red circle ✓, red circle is ✓, circle is above ✗, is above the ✗, above the blue ✗, the blue square ✓ → 3/6
    // 4-grams: the red circle is ✓, the other four ✗ → 1/5
    // BLEU-4 = (1 · 5/7 · 1/2 · 1/5)^(1/4) = (1/14)^(1/4) = 0.516973…
    const [bleu1, bleu2, bleu3, bleu4Score] = bleu(
      ["the red circle is above the blue square"],
      [["a red circle above a blue square", "the red circle is on top of the blue square"]],
    );
    expect(bleu1).toBeCloseTo(1, 8);
    expect(bleu2).toBeCloseTo(Math.sqrt(5 / 7), 8);
    expect(bleu3).toBeCloseTo((5 / 14) ** (1 / 3), 8);
    expect(bleu4Score).toBeCloseTo((1 / 14) ** (1 / 4), 8);
  });

  it("applies the brevity penalty and gives a short caption's missing 4-grams the precision 1e-15 / 1e-9", () => {
    // Candidate "a red circle" (c = 3); references of lengths 6 and 5 → closest r = 5.
    // p1 = 3/3, p2 = 2/2, p3 = 1/1; no 4-gram: p4 = (0 + 1e-15) / (0 + 1e-9) = 1e-6.
    // BP = exp(1 − 5/3) = exp(−2/3) = 0.513417…
    // BLEU-1 = BP; BLEU-4 = (1e-6)^(1/4) · BP = 0.0316228 · 0.513417 = 0.0162357
    const [bleu1, , , bleu4Score] = bleu(["a red circle"], [["a red circle on the left", "there is a red circle"]]);
    expect(bleu1).toBeCloseTo(Math.exp(-2 / 3), 8);
    expect(bleu4Score).toBeCloseTo(1e-6 ** 0.25 * Math.exp(-2 / 3), 10);
  });

  it("sums counts and lengths over the corpus before taking precisions and the brevity penalty", () => {
    // The two cases above as one corpus:
    // c = 8 + 3 = 11, r = 7 + 5 = 12 → BP = exp(1 − 12/11) = exp(−1/11)
    // p1 = (8+3)/(8+3) = 1, p2 = (5+2)/(7+2) = 7/9, p3 = (3+1)/(6+1) = 4/7, p4 = (1+0)/(5+0) = 1/5
    // BLEU-4 = (7/9 · 4/7 · 1/5)^(1/4) · BP = (4/45)^(1/4) · exp(−1/11) = 0.498575…
    const candidates = ["the red circle is above the blue square", "a red circle"];
    const references = [
      ["a red circle above a blue square", "the red circle is on top of the blue square"],
      ["a red circle on the left", "there is a red circle"],
    ];
    const { corpus, perImage } = bleuScores(candidates, references);
    const bp = Math.exp(-1 / 11);
    expect(corpus[0]).toBeCloseTo(bp, 8);
    expect(corpus[1]).toBeCloseTo(Math.sqrt(7 / 9) * bp, 8);
    expect(corpus[2]).toBeCloseTo((((7 / 9) * 4) / 7) ** (1 / 3) * bp, 8);
    expect(corpus[3]).toBeCloseTo((4 / 45) ** 0.25 * bp, 8);
    expect(bleu4(candidates, references)).toBe(corpus[3]);
    // Per image, each with its own brevity penalty (pycocoevalcap's second return value).
    expect(perImage[0][3]).toBeCloseTo((1 / 14) ** 0.25, 8);
    expect(perImage[1][3]).toBeCloseTo(1e-6 ** 0.25 * Math.exp(-2 / 3), 10);
  });

  it("breaks a tie between reference lengths towards the shorter reference", () => {
    // c = 4, references of lengths 3 and 5 are both 1 away → r = 3 ≤ c: no penalty (r = 5 would give exp(1 − 5/4) = 0.78).
    // Every n-gram of "a big red circle" is in the second reference → BLEU-4 ≈ 1.
    expect(bleu4(["a big red circle"], [["a red circle", "a big red circle here"]])).toBeCloseTo(1, 8);
    // The order of the references does not matter.
    expect(bleu4(["a big red circle"], [["a big red circle here", "a red circle"]])).toBeCloseTo(1, 8);
  });

  it("matches pycocoevalcap on captions from the world's test scenes", () => {
    // Candidate = the scene's first caption (even images) or the next scene's (odd images); references = the other two.
    const scores = bleu(WORLD_CANDIDATES, WORLD_REFERENCES);
    const pycocoevalcap = [0.5343565405720897, 0.44465385073865143, 0.38868516353130594, 0.3492314785875549];
    scores.forEach((score, n) => expectRelativelyClose(score, pycocoevalcap[n]));
  });

  it("rejects malformed corpora, quoting the bad value", () => {
    expect(() => bleu4(["a red circle"], [["a red circle"], ["a blue square"]])).toThrow(
      /expected one list of references per candidate, got 1 candidates and 2 reference lists/,
    );
    expect(() => bleu4(["a red circle", "a star"], [["a red circle"], []])).toThrow(
      /image 1 needs at least one reference caption, got \[\]/,
    );
    expect(() => bleu4(["a red circle"], [["a red circle", " . "]])).toThrow(/reference 1 of image 0 has no words: " \. "/);
    expect(() => bleu4([], [])).toThrow(/no candidates to score/);
    expect(() => bleu4([42 as unknown as string], [["a"]])).toThrow(/candidate 0 must be a string, got 42/);
    expect(() => bleu(["a"], [["a"]], 0)).toThrow(/maxN must be an integer ≥ 1, got 0/);
  });
});

describe("CIDEr-D (pycocoevalcap Cider)", () => {
  // A three-image toy corpus. Document frequencies (references only), |I| = 3:
  //   df(red) = 2 (images 0, 2), df(square) = 2 (images 1, 2), df(circle) = df(blue) = 1,
  //   df(red circle) = df(blue square) = df(red square) = 1, unseen n-grams 0 → max(1, 0) = 1.
  //   idf = log 3 − log df: log 3 = 1.098612 for df ≤ 1, log 1.5 = 0.405465 for df = 2.
  const references = [["red circle"], ["blue square"], ["red square"]];
  const LOG3 = Math.log(3);
  const LOG15 = Math.log(1.5);

  it("computes the toy corpus step by step", () => {
    // Image 0, "red circle" vs "red circle": identical vectors → cosine 1 for n = 1, 2; no 3- or 4-grams → 0.
    //   Same length → penalty 1. CIDEr-D = 10 · (1 + 1 + 0 + 0)/4 / 1 reference = 5.
    // Image 1, "blue circle" vs "blue square":
    //   n = 1: g(c) = {blue: log3, circle: log3}, g(s) = {blue: log3, square: log1.5}
    //     dot = min(log3, log3)·log3 = log3² (circle is not in s)
    //     ‖g(c)‖ = √2·log3, ‖g(s)‖ = √(log3² + log1.5²) = 1.171047
    //     cos = log3 / (√2 · 1.171047) = 0.663369
    //   n = 2: "blue circle" vs "blue square" → 0. CIDEr-D = 10 · 0.663369 / 4 = 1.658422
    // Image 2, "green star" vs "red square": nothing shared → 0.
    // Corpus: (5 + 1.658422 + 0) / 3 = 2.219474
    const perImage = ciderDPerImage(["red circle", "blue circle", "green star"], references);
    const image1 = (10 * (LOG3 / (Math.SQRT2 * Math.sqrt(LOG3 ** 2 + LOG15 ** 2)))) / 4;
    expect(perImage[0]).toBeCloseTo(5, 12);
    expect(perImage[1]).toBeCloseTo(image1, 12);
    expect(image1).toBeCloseTo(1.658422, 5);
    expect(perImage[2]).toBe(0);
    expect(ciderD(["red circle", "blue circle", "green star"], references)).toBeCloseTo((5 + image1) / 3, 12);
  });

  it("clips a repeated n-gram's weight at the reference's", () => {
    // Image 0, "circle circle" vs "red circle" (df unchanged: it comes from the references only).
    //   n = 1: g(c) = {circle: 2·log3}, g(s) = {red: log1.5, circle: log3}
    //     dot = min(2·log3, log3)·log3 = log3² (unclipped it would be 2·log3²)
    //     cos = log3² / (2·log3 · 1.171047) = log3 / 2.342094 = 0.469072
    //   n = 2: "circle circle" vs "red circle" → 0. Lengths: 1 bigram each → penalty 1.
    //   CIDEr-D = 10 · 0.469072 / 4 = 1.172680
    const [score] = ciderDPerImage(["circle circle", "blue circle", "green star"], references);
    const expected = (10 * (LOG3 / (2 * Math.sqrt(LOG3 ** 2 + LOG15 ** 2)))) / 4;
    expect(score).toBeCloseTo(expected, 12);
    expect(score).toBeCloseTo(1.17268, 5);
  });

  it("penalises a length difference with a Gaussian of sigma 6 over bigram counts", () => {
    // Image 0, "red circle" ×4 (8 words, 7 bigrams) vs "red circle" (1 bigram): δ = 6 → exp(−36 / 72) = exp(−0.5).
    //   n = 1: g(c) = 4·g(s) → dot = Σ min(4g, g)·g = ‖g(s)‖², ‖g(c)‖ = 4‖g(s)‖ → cos = 1/4
    //   n = 2: g(c) = {red circle: 4·log3, circle red: 3·log3 (unseen, df → 1)}, g(s) = {red circle: log3}
    //     dot = min(4·log3, log3)·log3 = log3², ‖g(c)‖ = 5·log3, ‖g(s)‖ = log3 → cos = 1/5
    //   n = 3, 4: the reference has none → 0.
    //   CIDEr-D = 10 · (1/4 + 1/5)/4 · exp(−0.5) = 1.125 · 0.606531 = 0.682347
    const [score] = ciderDPerImage(["red circle red circle red circle red circle", "blue circle", "green star"], references);
    expect(score).toBeCloseTo(1.125 * Math.exp(-0.5), 12);
    // σ is an option: σ = 3 gives exp(−36 / 18) = exp(−2).
    const [narrow] = ciderDPerImage(["red circle red circle red circle red circle", "blue circle", "green star"], references, {
      sigma: 3,
    });
    expect(narrow).toBeCloseTo(1.125 * Math.exp(-2), 12);
  });

  it("averages over an image's references and scores an empty caption 0", () => {
    // Image 0 with references "red circle" and "a red circle":
    //   df changes: red 2, circle 1, a 1, red circle 1, a red 1, a red circle 1 (image 0 only); |I| = 2 → log 2.
    //   ref "red circle": vectors identical to the candidate's → n = 1, 2 cosines 1 → 10 · 2/4 = 5
    //     (its length 1 bigram = the candidate's).
    //   ref "a red circle": 2 bigrams → δ = −1 → penalty exp(−1/72);
    //     n = 1: red weighs log2 − log2 = 0 (in both images' references), circle log2, a log2:
    //       dot = log2², ‖g(c)‖ = log2, ‖g(s)‖ = √2·log2 → cos = 1/√2
    //     n = 2: {red circle: log2} vs {a red: log2, red circle: log2} → cos = 1/√2; n = 3: candidate has none → 0.
    //     → 10 · (2/√2)/4 · exp(−1/72)
    //   CIDEr-D = (5 + 10 · (√2/4) · exp(−1/72)) / 2 references
    const scores = ciderDPerImage(["red circle", ""], [["red circle", "a red circle"], ["red square"]]);
    expect(scores[0]).toBeCloseTo((5 + ((10 * Math.SQRT2) / 4) * Math.exp(-1 / 72)) / 2, 12);
    expect(scores[1]).toBe(0);
  });

  it("is 0 on a one-image corpus (every idf is log 1 − log 1), as in pycocoevalcap", () => {
    expect(ciderD(["a red circle"], [["a red circle"]])).toBe(0);
  });

  it("matches pycocoevalcap on captions from the world's test scenes", () => {
    const perImage = ciderDPerImage(WORLD_CANDIDATES, WORLD_REFERENCES);
    const pycocoevalcap = [
      5.06869620576167, 0.018262830450338337, 8.970268259834466, 0.49848005785773364, 2.4047942764364336, 0.04806992364742171,
      1.597890426991846, 0.49820202169048705, 2.505329194853628, 0.20611074503414978, 4.390861198356848, 0.04352966428174814,
    ];
    perImage.forEach((score, i) => expectRelativelyClose(score, pycocoevalcap[i]));
    expectRelativelyClose(ciderD(WORLD_CANDIDATES, WORLD_REFERENCES), 2.1875412337663978);
  });

  it("rejects malformed corpora and options, quoting the bad value", () => {
    expect(() => ciderD(["a", "b"], [["a"]])).toThrow(/got 2 candidates and 1 reference lists/);
    expect(() => ciderD(["a"], [[]])).toThrow(/image 0 needs at least one reference caption, got \[\]/);
    expect(() => ciderD(["a"], [["..."]])).toThrow(/reference 0 of image 0 has no words: "\.\.\."/);
    expect(() => ciderD(["a"], [["a"]], { sigma: 0 })).toThrow(/sigma must be > 0, got 0/);
    expect(() => ciderD(["a"], [["a"]], { maxN: 2.5 })).toThrow(/maxN must be an integer ≥ 1, got 2.5/);
  });
});

describe("retrieval", () => {
  it("counts a row when any positive ranks in the top k, lower index first on ties", () => {
    const similarity = [
      [0.9, 0.1, 0.9, 0.3], // positive 2 ties with column 0, which ranks first → rank 1
      [0.2, 0.5, 0.5, 0.1], // positive 1 ties with column 2 and ranks first → rank 0
      [0.4, 0.3, 0.2, 0.1], // positives 2 and 3 → ranks 2 and 3 → the best is rank 2
    ];
    const positives = (row: number) => [2, 1, [2, 3]][row];
    expect(recallAtK(similarity, 1, positives)).toBeCloseTo(1 / 3, 15); // row 1
    expect(recallAtK(similarity, 2, positives)).toBeCloseTo(2 / 3, 15); // rows 0, 1
    expect(recallAtK(similarity, 3, positives)).toBe(1);
    expect(recallAtK(similarity, 10, positives)).toBe(1); // k beyond the candidates
  });

  it("reports both directions when each image has several captions", () => {
    // 2 images × 4 captions; captions 0, 1 describe image 0 and captions 2, 3 image 1.
    const similarity = [
      [0.4, 0.8, 0.9, 0.1], // image 0: its best caption (1, 0.8) is behind caption 2 (0.9) → rank 1
      [0.3, 0.1, 0.7, 0.6], // image 1: caption 2 ranks first → rank 0
    ];
    // Captions as queries (columns): 0 → [0.4, 0.3] image 0 first ✓; 1 → [0.8, 0.1] ✓; 2 → [0.9, 0.7] image 1 second ✗; 3 → [0.1, 0.6] ✓
    const recall = imageTextRecall(similarity, [0, 0, 1, 1], [1, 2]);
    expect(recall.imageToText).toEqual({ 1: 0.5, 2: 1 });
    expect(recall.textToImage).toEqual({ 1: 0.75, 2: 1 });
  });

  it("gives the chance level of Recall@K, equal to counting all rankings", () => {
    // 4 candidates, 2 positives: k = 1 → 2/4; k = 2 → 1 − C(2,2)/C(4,2) = 1 − 1/6 = 5/6; k = 3 → 1 (only 2 negatives).
    expect(chanceRecallAtK(4, 2, 1)).toBeCloseTo(1 / 2, 15);
    expect(chanceRecallAtK(4, 2, 2)).toBeCloseTo(5 / 6, 15);
    expect(chanceRecallAtK(4, 2, 3)).toBe(1);
    expect(chanceRecallAtK(100, 1, 5)).toBeCloseTo(0.05, 15); // text→image: k / Nimg
    // Brute force: 6 candidates, positives {0, 1, 2}, every one of the 720 rankings, as recallAtK scores them.
    const permutations = (items: number[]): number[][] =>
      items.length <= 1
        ? [items]
        : items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
    const rankings = permutations([0, 1, 2, 3, 4, 5]);
    // Each ranking as a similarity row: candidate c's score is 6 − its place.
    const similarity = rankings.map((order) => {
      const row = new Array<number>(6);
      order.forEach((candidate, place) => (row[candidate] = 6 - place));
      return row;
    });
    for (const k of [1, 2, 3, 4]) expect(recallAtK(similarity, k, () => [0, 1, 2])).toBeCloseTo(chanceRecallAtK(6, 3, k), 12);
    expect(() => chanceRecallAtK(4, 5, 1)).toThrow(/positives must be an integer in \[1, 4\], got 5/);
  });

  it("rejects bad similarity matrices, positives and k, quoting the bad value", () => {
    expect(() => recallAtK([[0.1, NaN]], 1, () => 0)).toThrow(/similarity\[0\]\[1\] must be a finite number, got NaN/);
    expect(() => recallAtK([[0.1, 0.2], [0.3]], 1, () => 0)).toThrow(/must have 2 entries \(as row 0\), row 1 has 1/);
    expect(() => recallAtK([[0.1, 0.2]], 1, () => 2)).toThrow(/positive 2 of row 0 is not a column index in \[0, 2\)/);
    expect(() => recallAtK([[0.1, 0.2]], 1, () => [])).toThrow(/row 0 has no positive candidates, got \[\]/);
    expect(() => recallAtK([[0.1, 0.2]], 0, () => 0)).toThrow(/k must be an integer ≥ 1, got 0/);
    expect(() => recallAtK([], 1, () => 0)).toThrow(/similarity must be a non-empty array of rows/);
    expect(() => imageTextRecall([[0.1, 0.2]], [0])).toThrow(/one image index per caption \(2 columns\), got 1 entries/);
    expect(() =>
      imageTextRecall(
        [
          [0.1, 0.2],
          [0.3, 0.4],
        ],
        [0, 0],
      ),
    ).toThrow(/image 1 has no caption/);
    expect(() => imageTextRecall([[0.1, 0.2]], [0, 3])).toThrow(/imageOfText\[1\] = 3 is not an image index in \[0, 1\)/);
  });
});

describe("ITM accuracy", () => {
  it("compares predicted classes or the argmax of logits with the labels", () => {
    expect(itmAccuracy([1, 0, 1, 1], [1, 0, 0, 1])).toBe(0.75);
    // argmax: 1, 0, 0 (a tie picks the first, as torch's argmax), 1 → against labels 1, 0, 1, 1: 3 of 4.
    expect(
      itmAccuracy(
        [
          [0.1, 2.0],
          [1.5, -1],
          [0.3, 0.3],
          [0, 1],
        ],
        [1, 0, 1, 1],
      ),
    ).toBe(0.75);
  });

  it("rejects mismatched lengths and bad classes, quoting the bad value", () => {
    expect(() => itmAccuracy([1, 0], [1])).toThrow(/got 2 predictions and 1 labels/);
    expect(() => itmAccuracy([], [])).toThrow(/no pairs to score/);
    expect(() => itmAccuracy([0.5], [1])).toThrow(
      /prediction 0 must be a class index \(integer ≥ 0\) or an array of logits, got 0.5/,
    );
    expect(() => itmAccuracy([[0.1, 0.2]], [2])).toThrow(/label 0 must be a class index in \[0, 2\), got 2/);
  });
});

/** Twelve candidates and reference pairs from data/world/scenes/test.jsonl (scenes 0–11), copied so the test stands alone. */
const WORLD_CANDIDATES = [
  "a large green circle on the left",
  "a large green triangle in the top right",
  "a large green triangle in the top right",
  "a drawing of a yellow diamond",
  "a drawing of a yellow diamond",
  "a scene with an orange diamond",
  "a scene with an orange diamond",
  "a small blue diamond on the right and a large purple diamond in the center",
  "a small blue diamond on the right and a large purple diamond in the center",
  "a large green triangle in the center",
  "a large green triangle in the center",
  "a scene with a green star and an orange diamond",
];
const WORLD_REFERENCES = [
  ["a green circle", "we see a large green circle on the left"],
  ["a scene with a blue star and a red star", "two shapes: a large blue star and a red star"],
  ["a large green triangle in the top right", "we see a large green triangle in the top right"],
  ["there is a small yellow circle on the right", "a yellow circle"],
  ["there is a small yellow diamond on the right", "an image of a yellow diamond"],
  ["a yellow diamond and a blue square", "a large yellow diamond in the bottom left next to a blue square"],
  ["a small orange diamond in the top left", "an image of an orange diamond"],
  [
    "a blue triangle, a blue circle, a blue square and an orange diamond",
    "a blue triangle, a blue circle, a blue square and an orange diamond",
  ],
  ["a large purple diamond in the center next to a blue diamond", "a blue diamond and a purple diamond"],
  [
    "four shapes: a large red triangle, a green diamond, a yellow square and a purple circle",
    "four shapes: a large red triangle, a large green diamond, a yellow square and a purple circle",
  ],
  ["the image shows a large green triangle in the center", "a green triangle"],
  ["a drawing of a blue diamond", "the image shows a large blue diamond in the center"],
];

describe("VQA scores by question type", () => {
  const ten = (answer: string, other = answer, others = 0) => [
    ...new Array(10 - others).fill(answer),
    ...new Array(others).fill(other),
  ];
  const questions = [
    { type: "color" as const, answers: ten("red") },
    { type: "color" as const, answers: ten("blue", "red", 2) },
    { type: "shape" as const, answers: ten("star") },
  ];

  it("averages soft accuracy overall and per type present", () => {
    // red vs ten "red": 1; red vs 8 blue + 2 red: each left-out subset holds ≤ 2 "red" → (2·1/3 + 8·2/3)/10 = 0.6; circle: 0.
    const scores = vqaScores("p_", ["red", "red", "circle"], questions);
    expect(Object.keys(scores).sort()).toEqual(["p_vqa_accuracy", "p_vqa_color_accuracy", "p_vqa_shape_accuracy"]);
    expect(scores.p_vqa_color_accuracy).toBeCloseTo((1 + 0.6) / 2, 10);
    expect(scores.p_vqa_shape_accuracy).toBe(0);
    expect(scores.p_vqa_accuracy).toBeCloseTo(1.6 / 3, 10);
    expect(() => vqaScores("", ["red"], questions)).toThrow(/1 answers for 3 questions/);
  });

  it("chance is the mean score of a uniform guess among each type's annotated answers", () => {
    // Color answers {red, blue}: q1 red 1, blue 0 → 0.5; q2 red 0.6, blue 1 → 0.8. Shape answers {star}: 1.
    const chance = chanceVqaScores(questions);
    expect(chance.vqa_color_accuracy).toBeCloseTo((0.5 + 0.8) / 2, 10);
    expect(chance.vqa_shape_accuracy).toBe(1);
    expect(chance.vqa_accuracy).toBeCloseTo((0.5 + 0.8 + 1) / 3, 10);
    expect(chanceVqaScores([])).toEqual({});
  });
});
