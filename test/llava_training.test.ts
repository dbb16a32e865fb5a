/**
 * Lab 02's library: LLaVA's conversation preprocessing (answer-only labels
 * token by token, image-token expansion, truncation that keeps the image,
 * the tokenization-mismatch check, the `plain` format), the two training
 * stages on a tiny model (what learns, what stays frozen, the loss going
 * down, tower features computed once), chat with stop tokens and the KV
 * cache, the linear projector and feature-layer options, and no tensor leaks.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import { maxDifference } from "./helpers/max_difference";
import { loadTokenizer, TextTokenizer } from "../src/tokenizer/tokenizer";
import {
  IGNORE_INDEX,
  TokenizationMismatchError,
  expandImageTokens,
  padConversations,
  tokenizeConversation,
  tokenizePlain,
  type ConversationTurn,
} from "../src/data/conversation";
import { sceneConversation, storedConversation } from "../src/data/llava_instructions";
import { LlavaForConditionalGeneration, patchNeighbourhoods, type LlavaConfig } from "../src/models/llava";
import {
  LlavaTrainer,
  VisionFeatureCache,
  disposeBatch,
  freezeForStage,
  llavaBatch,
  llavaLoss,
} from "../src/pretrain/llava_training";
import { chat, chatPromptIds, chatStopTokens } from "../src/pipelines/llava_chat";
import { llavaConfigFromHF, llavaConfigToHF } from "../src/models/llava_spec";
import { saveCheckpoint } from "../src/io/safetensors";
import { loadLlava } from "../src/io/pretrained";
import { Random } from "../src/util/random";
import { llavaFromBackbones } from "../src/pretrain/llava_setup";
import { loadCLIPVision, loadLlama } from "../src/io/pretrained";
import { scratchFolders } from "./helpers/scratch";
import { ObjectMapHead, objectMapTargets } from "../src/pretrain/object_map";
import { tinyLlavaConfig } from "./helpers/tiny_llava";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const WORLD = path.join(__dirname, "../data/world");
const tokenizer = loadTokenizer(path.join(WORLD, "tokenizer"));
const id = (token: string) => tokenizer.tokenId(token);
const NEWLINE = tokenizer.encode("\n");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

/** A tiny LLaVA over the world tokenizer: 16×16 images in 8×8 patches → 4 image tokens (test/helpers/tiny_llava.ts). */
const tinyConfig = (overrides: Partial<LlavaConfig> = {}) => tinyLlavaConfig(tokenizer, overrides);

const TWO_TURNS: ConversationTurn[] = [
  { from: "human", value: "<image>\nwhat color is the star?" },
  { from: "gpt", value: "red" },
  { from: "human", value: "how many objects are there?" },
  { from: "gpt", value: "3" },
];

describe("conversation preprocessing", () => {
  it("labels only the answers and their end-of-turn token, token by token, on a two-turn conversation", () => {
    const example = tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 4 });
    const M = IGNORE_INDEX;
    const [bos, user, assistant, end, image] = [
      tokenizer.bosTokenId,
      id("<|user|>"),
      id("<|assistant|>"),
      id("<|end|>"),
      id("<image>"),
    ];
    const q1 = tokenizer.encode("what color is the star?");
    const q2 = tokenizer.encode("how many objects are there?");
    const [red, three] = [tokenizer.encode("red"), tokenizer.encode("3")];
    const expectedIds = [
      bos,
      user,
      ...NEWLINE,
      image,
      image,
      image,
      image,
      ...NEWLINE,
      ...q1,
      end,
      ...NEWLINE,
      assistant,
      ...NEWLINE,
      ...red,
      end,
      ...NEWLINE,
      user,
      ...NEWLINE,
      ...q2,
      end,
      ...NEWLINE,
      assistant,
      ...NEWLINE,
      ...three,
      end,
      ...NEWLINE,
    ];
    const expectedLabels = [
      M,
      M,
      M,
      M,
      M,
      M,
      M,
      M,
      ...q1.map(() => M),
      M,
      M,
      M,
      M,
      ...red,
      end,
      M,
      M,
      M,
      ...q2.map(() => M),
      M,
      M,
      M,
      M,
      ...three,
      end,
      M,
    ];
    expect(example.inputIds).toEqual(expectedIds);
    expect(example.labels).toEqual(expectedLabels);
    expect(example.images).toBe(1);
    expect(example.droppedRounds).toBe(0);
    // The ids are exactly the template's text with the placeholder expanded (what chat() feeds the model).
    const rendered = tokenizer.encode(
      tokenizer.applyChatTemplate([
        { role: "user", content: TWO_TURNS[0].value },
        { role: "assistant", content: "red" },
        { role: "user", content: TWO_TURNS[2].value },
        { role: "assistant", content: "3" },
      ]),
    );
    expect(example.inputIds.filter((t) => t !== image)).toEqual(rendered.filter((t) => t !== image));
  });

  it("a system message is never supervised; the blind variant drops the image but keeps the labels", () => {
    const withSystem = tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 4, system: "answer briefly." });
    const plain = tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 4 });
    const supervised = (labels: number[]) => labels.filter((l) => l !== IGNORE_INDEX);
    expect(withSystem.inputIds.length).toBeGreaterThan(plain.inputIds.length);
    expect(supervised(withSystem.labels)).toEqual(supervised(plain.labels));
    const blind = tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 4, blind: true });
    expect(blind.images).toBe(0);
    expect(blind.inputIds).not.toContain(id("<image>"));
    expect(blind.inputIds.length).toBe(plain.inputIds.length - 4 - NEWLINE.length);
    expect(supervised(blind.labels)).toEqual(supervised(plain.labels));
  });

  it("truncation drops whole trailing rounds and never an image's tokens", () => {
    const turns: ConversationTurn[] = [
      ...TWO_TURNS,
      { from: "human", value: "is there a blue square?" },
      { from: "gpt", value: "no" },
    ];
    const full = tokenizeConversation(tokenizer, turns, { imageTokens: 16 });
    const twoRounds = tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 16 });
    const cut = tokenizeConversation(tokenizer, turns, { imageTokens: 16, maxLength: full.inputIds.length - 1 });
    expect(cut.droppedRounds).toBe(1);
    expect(cut.inputIds).toEqual(twoRounds.inputIds);
    expect(cut.labels).toEqual(twoRounds.labels);
    expect(cut.inputIds.filter((t) => t === id("<image>"))).toHaveLength(16);
    expect(cut.labels[cut.labels.length - 2]).toBe(id("<|end|>")); // the kept answer is whole, its end token included
    // A budget shorter than the first round (16 image tokens + question + answer) is an error, not a cut image.
    expect(() => tokenizeConversation(tokenizer, turns, { imageTokens: 16, maxLength: 20 })).toThrow(
      /first round alone is \d+ tokens \(1 image\(s\) × 16 image tokens included\), over maxLength 20/,
    );
  });

  it("the tokenization-mismatch check fires on a template that lets tokens merge across turns", () => {
    // No separator after a message: the answer "neutral" runs into the next turn's "user:", and byte-level BPE
    // tokenizes "neutraluser" differently from "neutral" + "user" — the labels would be shifted.
    const broken = new TextTokenizer(tokenizer.tokenizerJson, {
      ...tokenizer.config,
      chat_template:
        "{{ bos_token }}{% for m in messages %}{{ m['role'] + ':' + m['content'] }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}",
    });
    const turns: ConversationTurn[] = [
      { from: "human", value: "<image>\nwhat is the sentiment?" },
      { from: "gpt", value: "neutral" },
      { from: "human", value: "are you sure?" },
      { from: "gpt", value: "yes" },
    ];
    expect(() => tokenizeConversation(broken, turns, { imageTokens: 4 })).toThrow(TokenizationMismatchError);
    expect(() => tokenizeConversation(broken, turns, { imageTokens: 4 })).toThrow(
      /tokenization mismatch: .* first difference at token \d+/,
    );
    // One round has nothing after the answer to merge with: it passes.
    expect(tokenizeConversation(broken, turns.slice(0, 2), { imageTokens: 4 }).images).toBe(1);
    // A template whose prefixes are not prefixes of the whole cannot give a mask at all.
    const reordering = new TextTokenizer(tokenizer.tokenizerJson, {
      ...tokenizer.config,
      chat_template: "{% for m in messages | reverse %}{{ m['content'] + '<|end|>' }}{% endfor %}",
    });
    expect(() => tokenizeConversation(reordering, turns, { imageTokens: 4 })).toThrow(/does not extend the rendering before it/);
  });

  it("rejects malformed conversations, naming the turn", () => {
    expect(() =>
      tokenizeConversation(tokenizer, [{ from: "gpt", value: "red" }] as ConversationTurn[], { imageTokens: 4 }),
    ).toThrow(/turn 0 is from "gpt"; expected "human"/);
    expect(() => tokenizeConversation(tokenizer, TWO_TURNS.slice(0, 3), { imageTokens: 4 })).toThrow(
      /3 turns; expected an even number/,
    );
    expect(() =>
      tokenizeConversation(tokenizer, [TWO_TURNS[0], { from: "gpt", value: "<image> red" }], { imageTokens: 4 }),
    ).toThrow(/turn 1 \(gpt\) holds <image>/);
    expect(() => tokenizeConversation(tokenizer, TWO_TURNS, { imageTokens: 0 })).toThrow(
      /imageTokens must be a positive integer/,
    );
  });

  it("stage 1's plain format: image tokens, then the caption and EOS, loss on the caption", () => {
    const example = tokenizePlain(tokenizer, "a red star", { imageTokens: 4 });
    const caption = tokenizer.encode("a red star");
    const image = id("<image>");
    expect(example.inputIds).toEqual([tokenizer.bosTokenId, image, image, image, image, ...caption, tokenizer.eosTokenId]);
    expect(example.labels).toEqual([...new Array(5).fill(IGNORE_INDEX), ...caption, tokenizer.eosTokenId]);
    expect(() => tokenizePlain(tokenizer, "", { imageTokens: 4 })).toThrow(/caption must be a non-empty string/);
  });

  it("expands each image placeholder to the image-token count", () => {
    expect(expandImageTokens([1, 2, 5, 2, 6], 2, 3)).toEqual([1, 2, 2, 2, 5, 2, 2, 2, 6]);
    expect(expandImageTokens([1, 5], 2, 3)).toEqual([1, 5]);
    expect(() => expandImageTokens([2], 2, 0)).toThrow(/imageTokens must be a positive integer, got 0/);
  });

  it("padding: right for training (labels ignored, mask 0), left for prompts", () => {
    const a = { inputIds: [5, 6, 7], labels: [IGNORE_INDEX, 6, 7] };
    const b = { inputIds: [8], labels: [8] };
    expect(padConversations([a, b], 0)).toEqual({
      inputIds: [
        [5, 6, 7],
        [8, 0, 0],
      ],
      labels: [
        [IGNORE_INDEX, 6, 7],
        [8, IGNORE_INDEX, IGNORE_INDEX],
      ],
      attentionMask: [
        [1, 1, 1],
        [1, 0, 0],
      ],
    });
    expect(padConversations([a, b], 0, "left").inputIds).toEqual([
      [5, 6, 7],
      [0, 0, 8],
    ]);
  });

  it("the world's records become conversations: scenes from their VQA, the domain sets as stored", () => {
    const scene = {
      id: "s",
      captions: ["a red star"],
      vqa: [
        { question: "what color is the star?", answer: "red" },
        { question: "how many objects are there?", answer: "1" },
      ],
    };
    const turns = sceneConversation(scene, new Random(0));
    expect(turns).toHaveLength(6);
    expect(turns[0].value.startsWith("<image>\n")).toBe(true);
    expect(turns[1].value).toBe("a red star");
    expect(turns.slice(2).map((t) => t.value)).toEqual(["what color is the star?", "red", "how many objects are there?", "1"]);
    expect(sceneConversation(scene, new Random(0), { captionTurn: false })[0].value).toBe("<image>\nwhat color is the star?");
    const record = fs.readFileSync(path.join(WORLD, "medical/train.jsonl"), "utf8").split("\n")[0];
    const stored = storedConversation("medical", JSON.parse(record));
    const example = tokenizeConversation(tokenizer, stored, { imageTokens: 64 });
    expect(example.images).toBe(1);
    expect(example.droppedRounds).toBe(0);
    expect(() => storedConversation("scenes", JSON.parse(record))).toThrow(/set must be one of medical, code, sentiment/);
  });
});

/** Seeded pixels [n, 3, 16, 16] per key (the key's number seeds them). */
function fakeImages(keys: readonly string[]): tf.Tensor4D {
  return tf.tidy(
    () => tf.concat(keys.map((key) => tf.randomNormal([1, 3, 16, 16], 0, 1, "float32", Number(key)))) as tf.Tensor4D,
  );
}

async function values(variables: readonly tf.Variable[]): Promise<Float32Array[]> {
  return Promise.all(variables.map(async (v) => (await v.data()) as Float32Array));
}

function changed(before: readonly Float32Array[], after: readonly Float32Array[]): boolean {
  return before.some((b, k) => b.some((x, i) => x !== after[k][i]));
}

describe("LLaVA training stages", () => {
  it("stage 1 trains only the projector, stage 2 the projector and the LLM; the loss falls; tower features are computed once", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig());
    const imageTokens = model.imageTokensPerImage;
    expect(imageTokens).toBe(4);
    let loads = 0;
    const cache = new VisionFeatureCache(model, async (keys) => {
      loads += keys.length;
      return fakeImages(keys);
    });
    // Four images, each with its own caption: the projector must carry which image it is.
    const captions = ["a red star", "a blue circle", "a green square", "a purple diamond"];
    const keys = ["1", "2", "3", "4"];
    const examples = captions.map((caption) => tokenizePlain(tokenizer, caption, { imageTokens }));
    const before = tf.memory().numTensors;
    const towerBefore = await values(model.visionTower.namedParameters().map(([, v]) => v));
    const llmBefore = await values(model.languageModel.namedParameters().map(([, v]) => v));
    const projectorBefore = await values(model.projector.namedParameters().map(([, v]) => v));

    const stage1 = new LlavaTrainer(model, { stage: 1, learningRate: 1e-2 });
    expect(stage1.variables).toHaveLength(model.projector.namedParameters().length);
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const batch = llavaBatch(examples, tokenizer.padTokenId, await cache.features(keys));
      const loss = stage1.step(batch);
      losses.push((await loss.data())[0]);
      loss.dispose();
      disposeBatch(batch);
    }
    stage1.dispose();
    expect(loads).toBe(4); // each image through the tower once, for 12 steps
    // Only the projector moves, under a random frozen LLM: the loss falls steadily but not far (6.79 → 6.58 when written).
    losses.slice(1).forEach((loss, k) => expect(loss, `stage 1 step ${k + 1}`).toBeLessThan(losses[k]));
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] - 0.15);
    expect(changed(projectorBefore, await values(model.projector.namedParameters().map(([, v]) => v)))).toBe(true);
    expect(changed(llmBefore, await values(model.languageModel.namedParameters().map(([, v]) => v)))).toBe(false);

    // Stage 2 on conversations: the LLM learns too, the tower never.
    const conversations = captions.map((caption) =>
      tokenizeConversation(
        tokenizer,
        [
          { from: "human", value: "<image>\ndescribe the image briefly." },
          { from: "gpt", value: caption },
        ],
        { imageTokens },
      ),
    );
    const stage2 = new LlavaTrainer(model, { stage: 2, learningRate: 3e-3 });
    expect(stage2.variables.length).toBe(model.projector.namedParameters().length + model.languageModel.namedParameters().length);
    const stage2Losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const batch = llavaBatch(conversations, tokenizer.padTokenId, await cache.features(keys));
      const loss = stage2.step(batch);
      stage2Losses.push((await loss.data())[0]);
      loss.dispose();
      disposeBatch(batch);
    }
    stage2.dispose();
    expect(stage2Losses[stage2Losses.length - 1]).toBeLessThan(stage2Losses[0] * 0.9);
    expect(changed(llmBefore, await values(model.languageModel.namedParameters().map(([, v]) => v)))).toBe(true);
    expect(model.visionTower.trainableParameters()).toHaveLength(0);
    expect(changed(towerBefore, await values(model.visionTower.namedParameters().map(([, v]) => v)))).toBe(false);
    expect(tf.memory().numTensors, "tensors leaked by training").toBe(before);
    model.dispose();
  });

  it("the loss with cached features equals the loss from pixels, and counts only labelled positions", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig());
    freezeForStage(model, 1);
    const examples = [
      tokenizePlain(tokenizer, "a red star", { imageTokens: 4 }),
      tokenizePlain(tokenizer, "two shapes", { imageTokens: 4 }),
    ];
    const pixels = fakeImages(["7", "8"]);
    const features = model.visionFeatures(pixels) as tf.Tensor3D;
    const batch = llavaBatch(examples, tokenizer.padTokenId, features);
    const before = tf.memory().numTensors;
    const cached = llavaLoss(model, batch);
    // The same loss by hand, from pixels: −mean log p(label) over labelled positions.
    const { logits } = model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, pixelValues: pixels });
    const logSoftmax = tf.logSoftmax(logits);
    const logProbs = (await logSoftmax.array()) as number[][][];
    logSoftmax.dispose();
    const labels = (await batch.labels.array()) as number[][];
    let [sum, n] = [0, 0];
    labels.forEach((row, b) =>
      row.forEach((label, t) => {
        if (t > 0 && label !== IGNORE_INDEX) {
          sum -= logProbs[b][t - 1][label];
          n++;
        }
      }),
    );
    expect(n).toBe(examples.reduce((total, e) => total + e.labels.filter((l) => l !== IGNORE_INDEX).length, 0));
    expect(Math.abs((await cached.data())[0] - sum / n)).toBeLessThan(1e-4);
    tf.dispose([cached, logits]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => llavaBatch(examples, tokenizer.padTokenId)).toThrow(
      /the examples hold 2 image\(s\) but 0 feature set\(s\) were given/,
    );
    const wrongWidth = tf.zeros([2, 4, 16]);
    expect(() => model.forward({ inputIds: batch.inputIds, visionFeatures: wrongWidth })).toThrow(
      /visionFeatures must be \[Bimg, Nimg, 32\] \(the tower's selected layers\), got \[2,4,16\]/,
    );
    wrongWidth.dispose();
    disposeBatch(batch);
    pixels.dispose();
    model.dispose();
  });

  it("the conversation weighting averages each conversation's answer tokens, then the conversations", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig());
    freezeForStage(model, 2);
    // Answers of very different lengths: the token mean and the conversation mean must differ.
    const examples = [
      tokenizePlain(tokenizer, "a red star and a blue circle and a green square", { imageTokens: 4 }),
      tokenizePlain(tokenizer, "two", { imageTokens: 4 }),
    ];
    const batch = llavaBatch(examples, tokenizer.padTokenId, model.visionFeatures(fakeImages(["3", "4"])) as tf.Tensor3D);
    const before = tf.memory().numTensors;
    const { logits } = model.forward({
      inputIds: batch.inputIds,
      attentionMask: batch.attentionMask,
      visionFeatures: batch.visionFeatures,
    });
    const logSoftmax = tf.logSoftmax(logits);
    const logProbs = (await logSoftmax.array()) as number[][][];
    tf.dispose([logits, logSoftmax]);
    const labels = (await batch.labels.array()) as number[][];
    const rows = labels.map((row, b) => {
      const losses = row.flatMap((label, t) => (t > 0 && label !== IGNORE_INDEX ? [-logProbs[b][t - 1][label]] : []));
      return { sum: losses.reduce((a, x) => a + x, 0), n: losses.length };
    });
    expect(rows[0].n).toBeGreaterThan(3 * rows[1].n);
    const tokenMean = rows.reduce((a, r) => a + r.sum, 0) / rows.reduce((a, r) => a + r.n, 0);
    const conversationMean = rows.reduce((a, r) => a + r.sum / r.n, 0) / rows.length;
    const [byToken, byConversation] = [llavaLoss(model, batch), llavaLoss(model, batch, "conversation")];
    expect(Math.abs((await byToken.data())[0] - tokenMean)).toBeLessThan(1e-4);
    expect(Math.abs((await byConversation.data())[0] - conversationMean)).toBeLessThan(1e-4);
    expect(Math.abs(tokenMean - conversationMean)).toBeGreaterThan(1e-3);
    tf.dispose([byToken, byConversation]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => llavaLoss(model, batch, "sample" as never)).toThrow(/weighting must be "token" or "conversation", got "sample"/);
    expect(() => new LlavaTrainer(model, { stage: 2, lossWeighting: "per-row" as never })).toThrow(
      /lossWeighting must be "token" or "conversation", got "per-row"/,
    );
    const trainer = new LlavaTrainer(model, { stage: 2, lossWeighting: "conversation" });
    const loss = trainer.step(batch);
    expect(Math.abs((await loss.data())[0] - conversationMean)).toBeLessThan(1e-4);
    tf.dispose(loss);
    trainer.dispose();
    disposeBatch(batch);
    model.dispose();
  });
});

describe("the object-map objective beside the language loss", () => {
  it("a step's loss is the language loss plus the weighted object-map loss; the read-out learns; nothing leaks", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig()); // 16×16 images, 2×2 image tokens
    const examples = [
      tokenizePlain(tokenizer, "a red star", { imageTokens: 4 }),
      tokenizePlain(tokenizer, "a blue circle", { imageTokens: 4 }),
    ];
    const objects = [
      [{ color: "red", shape: "star", x: 3, y: 12 } as const],
      [{ color: "blue", shape: "circle", x: 10, y: 2 } as const],
    ];
    const featuresOf = () => tf.tidy(() => model.visionFeatures(fakeImages(["3", "4"])) as tf.Tensor3D);
    const before = tf.memory().numTensors;
    const head = new ObjectMapHead(32, 11);
    const trainer = new LlavaTrainer(model, { stage: 2, objectMap: { head, weight: 0.5 } });
    expect(trainer.variables).toContain(head.weight);
    const batch = {
      ...llavaBatch(examples, tokenizer.padTokenId, featuresOf()),
      objectMaps: objectMapTargets(objects, 2, 16),
    };
    const language = llavaLoss(model, batch);
    const map = tf.tidy(() => head.loss(model.projectFeatures(batch.visionFeatures!), batch.objectMaps));
    const [languageValue, mapValue] = [(await language.data())[0], (await map.data())[0]];
    tf.dispose([language, map]);
    const headBefore = head.weight.clone();
    const loss = trainer.step(batch);
    expect(Math.abs((await loss.data())[0] - (languageValue + 0.5 * mapValue))).toBeLessThan(1e-4);
    const reported = trainer.takeObjectMapLoss()!;
    expect(Math.abs((await reported.data())[0] - mapValue)).toBeLessThan(1e-5);
    expect(trainer.takeObjectMapLoss()).toBeUndefined();
    expect(await maxDifference(head.weight, headBefore)).toBeGreaterThan(0);
    tf.dispose([loss, reported, headBefore]);
    disposeBatch(batch);
    // A batch without object maps is refused, as is a head of the wrong width or a weight of 0.
    const plain = llavaBatch(examples, tokenizer.padTokenId, featuresOf());
    expect(() => trainer.step(plain)).toThrow(/object-map objective but the batch has no visionFeatures or no objectMaps/);
    disposeBatch(plain);
    const narrow = new ObjectMapHead(16, 1);
    expect(() => new LlavaTrainer(model, { stage: 2, objectMap: { head: narrow, weight: 1 } })).toThrow(
      /the object-map head reads 16-wide tokens but the image tokens are 32 wide/,
    );
    expect(() => new LlavaTrainer(model, { stage: 2, objectMap: { head, weight: 0 } })).toThrow(
      /object map: weight must be a positive number, got 0/,
    );
    narrow.dispose();
    trainer.dispose();
    head.dispose();
    expect(tf.memory().numTensors, "tensors leaked by the steps").toBe(before);
    model.dispose();
  });

  it("languageLoss false: the step is the weighted map alone, stage 1 moves the projector and the read-out and not the LLM", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig());
    const examples = [tokenizePlain(tokenizer, "a red star", { imageTokens: 4 })];
    const objects = [[{ color: "red", shape: "star", x: 3, y: 12 } as const]];
    const before = tf.memory().numTensors;
    const head = new ObjectMapHead(32, 12);
    const trainer = new LlavaTrainer(model, { stage: 1, objectMap: { head, weight: 2 }, languageLoss: false });
    expect(trainer.languageLoss).toBe(false);
    const batch = {
      ...llavaBatch(
        examples,
        tokenizer.padTokenId,
        tf.tidy(() => model.visionFeatures(fakeImages(["5"])) as tf.Tensor3D),
      ),
      objectMaps: objectMapTargets(objects, 2, 16),
    };
    const map = tf.tidy(() => head.loss(model.projectFeatures(batch.visionFeatures!), batch.objectMaps));
    const mapValue = (await map.data())[0];
    map.dispose();
    const [projectorBefore, llmBefore, headBefore] = [
      model.projector.linear1.weight.clone(),
      model.languageModel.namedParameters()[0][1].clone(), // the LLM's first weight (its token embeddings)
      head.weight.clone(),
    ];
    const loss = trainer.step(batch);
    // The step's loss is 2 × the map's, with no language loss in it (which is far above 0 on an untrained model).
    expect(Math.abs((await loss.data())[0] - 2 * mapValue)).toBeLessThan(1e-5);
    const reported = trainer.takeObjectMapLoss()!;
    expect(Math.abs((await reported.data())[0] - mapValue)).toBeLessThan(1e-6);
    expect(await maxDifference(model.projector.linear1.weight, projectorBefore)).toBeGreaterThan(0);
    expect(await maxDifference(head.weight, headBefore)).toBeGreaterThan(0);
    expect(await maxDifference(model.languageModel.namedParameters()[0][1], llmBefore)).toBe(0);
    tf.dispose([loss, reported, projectorBefore, llmBefore, headBefore]);
    disposeBatch(batch);
    trainer.dispose();
    expect(() => new LlavaTrainer(model, { stage: 1, languageLoss: false })).toThrow(
      /languageLoss false needs an objectMap objective/,
    );
    expect(() => new LlavaTrainer(model, { stage: 1, objectMap: { head, weight: 1 }, languageLoss: "no" as never })).toThrow(
      /languageLoss must be true or false, got "no"/,
    );
    head.dispose();
    expect(tf.memory().numTensors, "tensors leaked by the steps").toBe(before);
    model.dispose();
  });
});

describe("chat", () => {
  it("generates with the KV cache until a stop token, leaving it out of the text", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig());
    const pixels = fakeImages(["3"]);
    const messages = [{ role: "user" as const, content: "what color is the star?" }];
    const before = tf.memory().numTensors;
    const free = await chat(model, tokenizer, pixels, messages, { maxNewTokens: 6, stopTokens: [] });
    expect(free.tokens).toHaveLength(6);
    expect(free.stopped).toBe(false);
    // Stop at the third token the model would write: the reply ends there, the stop token kept in `tokens` only.
    const stop = free.tokens[2];
    const firstAt = free.tokens.indexOf(stop);
    const stopped = await chat(model, tokenizer, pixels, messages, { maxNewTokens: 6, stopTokens: [stop] });
    expect(stopped.stopped).toBe(true);
    expect(stopped.tokens).toEqual(free.tokens.slice(0, firstAt + 1));
    expect(stopped.text).toBe(tokenizer.decode(free.tokens.slice(0, firstAt), { skipSpecialTokens: true }));
    // Without the cache: the same tokens.
    const recomputed = await chat(model, tokenizer, pixels, messages, { maxNewTokens: 6, stopTokens: [], useCache: false });
    expect(recomputed.tokens).toEqual(free.tokens);
    expect(tf.memory().numTensors, "tensors leaked by chat").toBe(before);
    expect(chatStopTokens(tokenizer)).toEqual([id("<|end|>"), tokenizer.eosTokenId]);
    pixels.dispose();
    model.dispose();
  });

  it("puts <image> first and expands it; refuses a placeholder without an image", async () => {
    const messages = [{ role: "user" as const, content: "what color is the star?" }];
    const ids = chatPromptIds(tokenizer, messages, 4, true);
    const image = id("<image>");
    expect(ids.slice(0, 7)).toEqual([tokenizer.bosTokenId, id("<|user|>"), ...NEWLINE, image, image, image, image]);
    expect(ids.slice(-2)).toEqual([id("<|assistant|>"), ...NEWLINE]);
    expect(chatPromptIds(tokenizer, messages, 4, false)).not.toContain(image);
    expect(() => chatPromptIds(tokenizer, [{ role: "user", content: "<image>\nhi" }], 4, false)).toThrow(
      /hold 1 <image> placeholder\(s\) but no image was given/,
    );
    expect(() => chatPromptIds(tokenizer, [...messages, { role: "assistant", content: "red" }], 4, true)).toThrow(
      /last message is from "assistant"/,
    );
    const model = new LlavaForConditionalGeneration(tinyConfig());
    await expect(chat(model, tokenizer, tf.zeros([3, 8, 8]), messages)).rejects.toThrow(/expected pixels \[3, 16, 16\]/);
    model.dispose();
  });
});

describe("LLaVA design options (the lab's ablations)", () => {
  it("a linear projector saves and loads with mm_projector_type; feature layers −1 and −2 differ", async () => {
    const model = new LlavaForConditionalGeneration(tinyConfig({ projectorType: "linear", visionFeatureLayers: [-1] }));
    expect(model.projector.linear2).toBeUndefined();
    expect(model.projector.namedParameters().map(([name]) => name)).toEqual(["linear_1.weight", "linear_1.bias"]);
    const directory = scratch("llava-linear-");
    fs.writeFileSync(path.join(directory, "config.json"), JSON.stringify(llavaConfigToHF(model.config)));
    await saveCheckpoint(directory, model.stateDict());
    const loaded = loadLlava(directory);
    expect(loaded.config.projectorType).toBe("linear");
    expect(loaded.config.visionFeatureLayers).toEqual([-1]);
    const pixels = fakeImages(["9"]);
    const ids = tf.tensor2d([[tokenizer.bosTokenId, ...new Array(4).fill(id("<image>")), 40, 41]], [1, 7], "int32");
    const [a, b] = [
      model.forward({ inputIds: ids, pixelValues: pixels }).logits,
      loaded.forward({ inputIds: ids, pixelValues: pixels }).logits,
    ];
    expect(await maxDifference(a, b)).toBe(0);
    const penultimate = new LlavaForConditionalGeneration(tinyConfig({ visionFeatureLayers: [-2] }));
    const [last, second] = [model.visionFeatures(pixels), penultimate.visionFeatures(pixels)];
    expect(last.shape).toEqual([1, 4, 32]);
    expect(await maxDifference(last, second)).toBeGreaterThan(1e-3);
    expect(() => new LlavaForConditionalGeneration(tinyConfig({ projectorType: "conv" as never }))).toThrow(
      /projectorType must be one of mlp2x_gelu, linear, got "conv"/,
    );
    tf.dispose([pixels, ids, a, b, last, second]);
    [model, loaded, penultimate].forEach((m) => m.dispose());
    fs.rmSync(directory, { recursive: true, force: true });
  });
});

describe("LLaVA's windowed projector (local context for each image token)", () => {
  it("patchNeighbourhoods lays out each patch's 3×3 neighbours row by row, zeros beyond the edge", async () => {
    // one image, a 3×3 grid of 1-wide features 1…9 (row-major)
    const grid = tf.tensor3d([[[1], [2], [3], [4], [5], [6], [7], [8], [9]]]);
    const windows = patchNeighbourhoods(grid, 3); // [1, 9, 9]
    expect(windows.shape).toEqual([1, 9, 9]);
    const rows = (await windows.array()) as number[][][];
    expect(rows[0][4]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]); // the middle patch sees the whole grid
    expect(rows[0][0]).toEqual([0, 0, 0, 0, 1, 2, 0, 4, 5]); // the top-left corner: five neighbours beyond the edge
    expect(rows[0][5]).toEqual([2, 3, 0, 5, 6, 0, 8, 9, 0]); // row 1, column 2
    expect(patchNeighbourhoods(grid, 1)).toBe(grid);
    expect(() => patchNeighbourhoods(grid, 2)).toThrow(/window must be an odd integer ≥ 1, got 2/);
    expect(() => patchNeighbourhoods(tf.zeros([1, 8, 1]), 3)).toThrow(/a square patch grid\), got \[1,8,1\]/);
    tf.dispose([grid, windows]);
  });

  it("projectorWindow 3: the projector reads 9 patches per token, the image tokens depend on their neighbours, config.json keeps it", async () => {
    const config = tinyConfig({ vision: { ...tinyConfig().vision, imageSize: 24 }, projectorWindow: 3 }); // a 3×3 patch grid
    const model = new LlavaForConditionalGeneration(config);
    const plain = new LlavaForConditionalGeneration({ ...config, projectorWindow: undefined });
    expect(model.projector.linear1.inFeatures).toBe(9 * 32);
    expect(plain.projector.linear1.inFeatures).toBe(32);
    expect(model.imageTokensPerImage).toBe(9);
    const features = tf.randomNormal([2, 9, 32], 0, 1, "float32", 4); // the tower's features of two images
    const changed = tf.tidy(() =>
      features.add(
        tf
          .oneHot(tf.tensor1d([0], "int32"), 9)
          .reshape([1, 9, 1])
          .mul(3),
      ),
    ); // patch 0 of each image moved
    const [a, b] = [model.projectFeatures(features), model.projectFeatures(changed)];
    const [pa, pb] = [plain.projectFeatures(features), plain.projectFeatures(changed)];
    const diff = (x: tf.Tensor, y: tf.Tensor, token: number) =>
      maxDifference(x.slice([0, token, 0], [2, 1, -1]), y.slice([0, token, 0], [2, 1, -1]));
    expect(await diff(a, b, 4)).toBeGreaterThan(1e-3); // the middle token sees patch 0
    expect(await diff(a, b, 8)).toBe(0); // the far corner does not
    expect(await diff(pa, pb, 4)).toBe(0); // without the window, a token reads only its own patch
    const document = llavaConfigToHF(model.config);
    expect(document.mllm_labs_projector_window).toBe(3);
    expect(llavaConfigToHF(plain.config).mllm_labs_projector_window).toBeUndefined();
    expect(llavaConfigFromHF({ json: document, where: "config.json" } as never).projectorWindow).toBe(3);
    expect(() => new LlavaForConditionalGeneration({ ...config, projectorWindow: 2 })).toThrow(
      /projectorWindow must be an odd integer ≥ 1 \(1 = off\), got 2/,
    );
    expect(() => new LlavaForConditionalGeneration({ ...config, visionFeatureSelectStrategy: "full" })).toThrow(
      /projectorWindow 3 reads the patch grid and needs visionFeatureSelectStrategy "default"/,
    );
    tf.dispose([features, changed, a, b, pa, pb]);
    [model, plain].forEach((m) => m.dispose());
  });
});

describe("LLaVA from the project's backbones", () => {
  it("holds the vision backbone's tower and the language backbone's LLM exactly, with a new projector", async () => {
    const root = path.join(__dirname, "..");
    const { model, tokenizer: own } = llavaFromBackbones({ root, visionFeatureLayer: -1, projectorType: "linear" });
    expect(own.vocabSize).toBe(tokenizer.vocabSize);
    expect(model.imageTokensPerImage).toBe(64); // 64×64 images in 8×8 patches, class token dropped
    expect(model.config.imageTokenId).toBe(id("<image>"));
    expect(model.projector.linear2).toBeUndefined();
    const vision = loadCLIPVision(path.join(root, "data/checkpoints/vision"));
    const language = loadLlama(path.join(root, "data/checkpoints/language"));
    for (const [name, variable] of vision.namedParameters())
      expect(await maxDifference(variable, model.visionTower.stateDict()[name]), name).toBe(0);
    for (const [name, variable] of language.namedParameters())
      expect(await maxDifference(variable, model.languageModel.stateDict()[name]), name).toBe(0);
    [vision, language, model].forEach((m) => m.dispose());
    expect(() => llavaFromBackbones({ root, vision: path.join(root, "no/such/dir") })).toThrow(/no\/such\/dir/);
  });
});
