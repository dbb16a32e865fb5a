/**
 * Lab 05's storyteller (`npm run pretrain -- storyteller`): a dry run of the
 * recipe on a tiny plan (card, baselines, log lines, no leaks), the filmstrip
 * frames, refusals, `chat` passing the decoding options through, and, when
 * the checkpoint is committed, the card's quick eval reproduced through the
 * checkpoint loader `mllm-labs eval` uses, and issue 19's targets.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  pretrainStoryteller,
  evaluateStoryteller,
  evaluateStorytellerCheckpoint,
  filmstripFrames,
  storedStories,
  storytellerConversation,
  storytellerUserTurn,
  loadStoryteller,
  STORYTELLER_PLAN,
  STORYTELLER_QUICK_EVAL_LIMIT,
  type StorytellerPlan,
} from "../src/pretrain/storyteller";
import { loadLlava } from "../src/pretrain/llava";
import { decodeRgb } from "../src/preprocess/clip_image";
import { LlavaForConditionalGeneration, type LlavaConfig } from "../src/models/llava";
import { chat, chatBatch, chatPromptIds } from "../src/pipelines/llava_chat";
import { loadTokenizer } from "../src/tokenizer/tokenizer";
import { countImagePlaceholders } from "../src/data/story_prompt";

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const LLAVA = path.join(ROOT, "data", "checkpoints", "llava");
const CHECKPOINT = path.join(ROOT, "data", "checkpoints", "storyteller");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A few stories and steps: the recipe end to end in seconds, with the object-map stage and objective. */
const TINY: StorytellerPlan = {
  ...STORYTELLER_PLAN,
  steps: 3,
  batchSize: 4,
  freshStories: 2,
  storedRecords: 6,
  objectMap: { weight: 1 },
  objectMapStage: { steps: 2, learningRate: 1e-3 },
};

/** The metrics every story is scored on (order can be missing only when no story told two events). */
const STORY_METRICS = [
  "grounding_precision",
  "grounding_recall",
  "object_precision",
  "object_recall",
  "event_precision",
  "event_recall",
  "hallucination_rate",
  "repetition",
  "bleu4",
  "cider_d",
  "rouge_l",
];

describe("pretrainStoryteller (dry run, tiny plan)", () => {
  it("trains from ../llava with pooling, evaluates with every baseline, logs its steps, and leaks no tensors", async () => {
    const before = tf.memory().numTensors;
    const lines: string[] = [];
    const { model, card } = await pretrainStoryteller(
      { world: WORLD, out: CHECKPOINT, dryRun: true, evalLimit: 2, log: (l) => lines.push(l) },
      TINY,
    );
    expect(model.imageTokensPerImage).toBe(16);
    expect(model.config.imagePoolStride).toBe(2);
    model.dispose();
    expect(tf.memory().numTensors, "tensors leaked").toBe(before);
    expect(card.model_type).toBe("llava");
    expect(card.steps).toBe(3);
    expect(card.loss_curve).toHaveLength(3);
    expect(card.loss_curve.every(Number.isFinite)).toBe(true);
    // The object map's own curve beside the language loss; at the start an empty token costs about 30·softplus(−5).
    const objectMapCurve = card.object_map_loss_curve as number[];
    expect(objectMapCurve).toHaveLength(3);
    expect(objectMapCurve.every((v) => v > 0.1 && v < 5)).toBe(true);
    expect(card.description).toContain("object-map objective (weight 1)");
    expect(lines.some((l) => / \(object map \d\.\d{4}\)/.test(l))).toBe(true);
    // The stage on the map alone ran first, with its own curve (the map's loss) and time.
    const stageCurve = card.object_map_stage_curve as number[];
    expect(stageCurve).toHaveLength(2);
    expect(stageCurve.every((v) => v > 0.1 && v < 5)).toBe(true);
    expect(lines.findIndex((l) => l.includes("storyteller object map step 2/2"))).toBeLessThan(
      lines.findIndex((l) => l.includes("storyteller step 1/3")),
    );
    expect(card.description).toContain("2 steps (peak learning rate 0.001) on the object map alone");
    expect(Number.isFinite((card.stage_seconds as Record<string, number>).object_map)).toBe(true);
    expect(Number.isFinite(card.train_seconds)).toBe(true);
    expect(lines.some((l) => /6 stored \+ 2 fresh stories, 16 tokens per frame/.test(l))).toBe(true);
    expect(lines.some((l) => l.includes("storyteller step 3/3"))).toBe(true);
    for (const name of STORY_METRICS) expect(Number.isFinite(card.metrics[name]), name).toBe(true);
    const baselines = card.baselines as Record<string, Record<string, number>>;
    expect(Object.keys(baselines).sort()).toEqual(["blind", "per_frame_captions", "shuffled_frames"]);
    for (const [name, values] of Object.entries(baselines))
      for (const metric of STORY_METRICS) expect(Number.isFinite(values[metric]), `${name} ${metric}`).toBe(true);
    const samples = card.samples as { reference: string; stories: Record<string, string> }[];
    expect(samples).toHaveLength(2);
    expect(Object.keys(samples[0].stories).sort()).toEqual(["blind", "model", "per_frame_captions", "shuffled_frames"]);
    // The per-frame baseline is five captions, one sentence each.
    expect(samples[0].stories.per_frame_captions.split(".").filter((s) => s.trim()).length).toBeGreaterThanOrEqual(5);
  }, 90_000);

  it("--steps sets the story steps and the object-map stage's in proportion", async () => {
    const lines: string[] = [];
    const { model, card } = await pretrainStoryteller(
      { world: WORLD, out: CHECKPOINT, dryRun: true, evalLimit: 1, steps: 6, log: (l) => lines.push(l) },
      { ...TINY, objectMapStage: { steps: 4, learningRate: 1e-3 } },
    );
    model.dispose();
    expect(card.steps).toBe(6);
    expect((card.plan as StorytellerPlan).objectMapStage?.steps).toBe(8); // 4 × 6 / 3
    expect(lines.some((l) => l.includes("storyteller object map step 8/8"))).toBe(true);
  }, 90_000);

  it("refuses a missing starting LLaVA and a bad step count, naming them", async () => {
    await expect(pretrainStoryteller({ world: WORLD, out: "/tmp/nowhere/storyteller", dryRun: true })).rejects.toThrow(
      /the LLaVA to start from, \/tmp\/nowhere\/llava, is missing \(make it with npm run pretrain -- llava\)/,
    );
    await expect(pretrainStoryteller({ world: WORLD, out: CHECKPOINT, dryRun: true, steps: 2.5 }, TINY)).rejects.toThrow(
      /steps must be a positive integer, got 2.5/,
    );
    await expect(
      pretrainStoryteller({ world: WORLD, out: CHECKPOINT, dryRun: true }, { ...TINY, objectMap: { weight: -1 } }),
    ).rejects.toThrow(/object map: weight must be a positive number, got -1/);
    const { objectMap: _objectMap, ...withoutMap } = TINY;
    await expect(pretrainStoryteller({ world: WORLD, out: CHECKPOINT, dryRun: true }, withoutMap)).rejects.toThrow(
      /objectMapStage needs objectMap/,
    );
    await expect(
      pretrainStoryteller(
        { world: WORLD, out: CHECKPOINT, dryRun: true },
        { ...TINY, objectMapStage: { steps: 0, learningRate: 1e-3 } },
      ),
    ).rejects.toThrow(/objectMapStage.steps must be a positive integer, got 0/);
  });
});

describe("story data and prompt", () => {
  it("cuts a stored filmstrip into its five frames; refuses an image of another size", async () => {
    const [story] = await storedStories(WORLD, "test", 1);
    expect(story.frames).toHaveLength(5);
    expect(story.sentences).toHaveLength(5);
    const strip = await decodeRgb(path.join(WORLD, "stories", "test", "000000.png"));
    // Frame 3's pixel (x 10, y 20) is the strip's pixel (64·3 + 10, 20).
    const at = ((20 * strip.width + 3 * 64 + 10) * 3) as number;
    expect([...story.frames[3].rgb!.subarray((20 * 64 + 10) * 3, (20 * 64 + 10) * 3 + 3)]).toEqual([
      ...strip.data.subarray(at, at + 3),
    ]);
    await expect(filmstripFrames(path.join(WORLD, "scenes", "test", "000000.png"))).rejects.toThrow(
      /is 64×64; expected 5 frames of 64×64 side by side/,
    );
  });

  it("the prompt holds one placeholder per frame after its separator; the blind prompt none", () => {
    const turn = storytellerUserTurn();
    expect(countImagePlaceholders(turn)).toBe(5);
    expect(turn.startsWith("picture 1: <image>picture 2: <image>")).toBe(true);
    expect(storytellerUserTurn(undefined, true)).toBe("tell the story of these pictures, one sentence per picture.");
    const [human, answer] = storytellerConversation(["a.", "b.", "c.", "d.", "e."]);
    expect(human.from).toBe("human");
    expect(answer.value).toBe("a. b. c. d. e.");
  });
});

describe("evaluateStoryteller refusals", () => {
  it("refuses a bad limit and lab 02's unpooled LLaVA (320 image positions), saying why", async () => {
    const llava = loadLlava(LLAVA);
    try {
      await expect(evaluateStoryteller(llava.model, llava.tokenizer, WORLD, { limit: 0 })).rejects.toThrow(
        /limit must be a positive integer \(test stories\), got 0/,
      );
      await expect(evaluateStoryteller(llava.model, llava.tokenizer, WORLD, { limit: 1 })).rejects.toThrow(
        /5 frames × 64 image tokens = 320 positions leave too little of the LLM's 256.*imagePoolStride ≥ 2/,
      );
      expect(() => loadStoryteller(LLAVA)).toThrow(/has model_type "llava" and no mllm_labs.storyteller/);
    } finally {
      llava.model.dispose();
    }
  });
});

describe("chat passes the decoding options through", () => {
  const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
  const config: LlavaConfig = {
    vision: { hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 2, imageSize: 16, patchSize: 8 },
    text: {
      vocabSize: tokenizer.vocabSize,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKeyValueHeads: 2,
      eosTokenIds: [tokenizer.eosTokenId],
      padTokenId: tokenizer.padTokenId,
    },
    imageTokenId: tokenizer.tokenId("<image>"),
    seed: 3,
  };

  it("beam search, length penalty, early stopping, repetition penalty and n-gram ban reach generate", async () => {
    const model = new LlavaForConditionalGeneration(config);
    const pixels = tf.randomNormal([1, 3, 16, 16], 0, 1, "float32", 4);
    const messages = [{ role: "user" as const, content: "tell the story." }];
    const ids = chatPromptIds(tokenizer, messages, model.imageTokensPerImage, true);
    const inputIds = tf.tensor2d([ids], [1, ids.length], "int32");
    const before = tf.memory().numTensors;
    for (const decoding of [
      { numBeams: 3, lengthPenalty: 0.5, earlyStopping: true },
      { repetitionPenalty: 1.5 },
      { noRepeatNgramSize: 1 },
    ]) {
      const options = { maxNewTokens: 6, stopTokens: [] as number[], ...decoding };
      const reply = await chat(model, tokenizer, pixels, messages, options);
      const [expected] = await model.generate({ inputIds, pixelValues: pixels }, options);
      expect(reply.tokens, JSON.stringify(decoding)).toEqual(expected);
    }
    // The n-gram ban of size 1 forbids any repeated token: the reply's tokens are all different.
    const banned = await chat(model, tokenizer, pixels, messages, { maxNewTokens: 8, stopTokens: [], noRepeatNgramSize: 1 });
    expect(new Set(banned.tokens).size).toBe(banned.tokens.length);
    await expect(chat(model, tokenizer, pixels, messages, { repetitionPenalty: 0 })).rejects.toThrow(/repetitionPenalty/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([pixels, inputIds]);
    model.dispose();
  });

  it("chatBatch takes F frames per conversation and checks the count", async () => {
    const model = new LlavaForConditionalGeneration(config);
    const pixels = tf.randomNormal([4, 3, 16, 16], 0, 1, "float32", 5);
    const messages = [{ role: "user" as const, content: "<image><image>\ntell the story." }];
    const replies = await chatBatch(
      model,
      tokenizer,
      [messages, messages],
      { pixelValues: pixels, framesPerRow: 2 },
      {
        maxNewTokens: 3,
      },
    );
    expect(replies).toHaveLength(2);
    await expect(chatBatch(model, tokenizer, [messages], { pixelValues: pixels, framesPerRow: 2 })).rejects.toThrow(
      /1 conversation\(s\) × 2 image\(s\) each need 2 image\(s\), got 4/,
    );
    await expect(
      chatBatch(model, tokenizer, [messages, messages], { pixelValues: pixels.slice([0], [2]), framesPerRow: 1 }),
    ).rejects.toThrow(/hold 2 <image> placeholder\(s\) but one image was given/);
    tf.dispose(pixels);
    model.dispose();
  });
});

describe("the committed checkpoint (data/checkpoints/storyteller)", () => {
  const hasCheckpoint = fs.existsSync(path.join(CHECKPOINT, "card.json"));
  const card = hasCheckpoint ? JSON.parse(fs.readFileSync(path.join(CHECKPOINT, "card.json"), "utf8")) : undefined;

  it.runIf(hasCheckpoint)(
    "fits the size budget, and the eval mllm-labs eval runs reproduces the card's quick eval without leaks",
    async () => {
      expect(fs.statSync(path.join(CHECKPOINT, "model.safetensors")).size).toBeLessThanOrEqual(6e6);
      const before = tf.memory().numTensors;
      const result = await evaluateStorytellerCheckpoint(CHECKPOINT, WORLD, { limit: STORYTELLER_QUICK_EVAL_LIMIT });
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      const quick = card.quick_eval;
      expect(quick.limit).toBe(STORYTELLER_QUICK_EVAL_LIMIT);
      const close = (value: number, stored: number, what: string) =>
        expect(Math.abs(value - stored), `${what}: eval ${value}, card ${stored}`).toBeLessThanOrEqual(0.01);
      expect(Object.keys(result.metrics).sort()).toEqual(Object.keys(quick.metrics).sort());
      for (const [name, value] of Object.entries(result.metrics)) close(value, quick.metrics[name], name);
      expect(Object.keys(result.baselines).sort()).toEqual(Object.keys(quick.baselines).sort());
      for (const [baseline, values] of Object.entries(result.baselines))
        for (const [name, value] of Object.entries(values)) close(value, quick.baselines[baseline][name], `${baseline} ${name}`);
    },
    90_000,
  );

  it.runIf(hasCheckpoint)("trained in under 30 minutes; CIDEr-D and grounding precision above every baseline", () => {
    expect(card.train_seconds).toBeLessThanOrEqual(30 * 60);
    // Issue 19: events told in frame order, above the shuffled-frames baseline (per-frame captions tell no events).
    expect(card.metrics.order).toBeGreaterThan(card.baselines.shuffled_frames.order);
    for (const baseline of ["per_frame_captions", "shuffled_frames", "blind"]) {
      expect(card.metrics.cider_d, `CIDEr-D vs ${baseline}`).toBeGreaterThan(card.baselines[baseline].cider_d);
      expect(card.metrics.grounding_precision, `grounding vs ${baseline}`).toBeGreaterThan(
        card.baselines[baseline].grounding_precision,
      );
    }
  });

  // Issue 19's grounding targets on the test split, met by the committed run (the object-map stage, then 1,000 story steps
  // × 16 with the map beside them): 0.932 and 0.043 (the seed-5 and seed-6 worlds: 0.919 / 0.063, 0.914 / 0.070). They
  // were kept as expected failures until then (the map beside the story loss alone: 0.863 and 0.173; without the map:
  // 0.801 and 0.291).
  it.runIf(hasCheckpoint)("grounding precision at least 0.9 and hallucination rate at most 0.05 (issue 19)", () => {
    expect(card.metrics.grounding_precision).toBeGreaterThanOrEqual(0.9);
    expect(card.metrics.hallucination_rate).toBeLessThanOrEqual(0.05);
    // and far from what the same model writes from shuffled frames
    expect(card.baselines.shuffled_frames.hallucination_rate - card.metrics.hallucination_rate).toBeGreaterThan(0.1);
  });
});
