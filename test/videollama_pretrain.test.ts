/**
 * Lab 03's VideoLLaMA recipe (`npm run pretrain -- videollama`): the order and
 * audio-visual questions derived from a clip's tracks, checked on hand-made
 * tracks; the three stages end to end on a tiny plan over the real frozen
 * backbones (a bridge-only folder that loads back to the same logits, every
 * metric and baseline, no leaks, refusals); and, when the checkpoint is
 * committed, the card's quick eval reproduced by the loader `mllm-labs eval`
 * uses, and issue 17's targets.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { registerNativeBackend } from "../src/engine/native/register";
import {
  orderQuestions,
  audioVisualQuestions,
  offeredCandidates,
  trackTimings,
  type TrackTiming,
} from "../src/data/video_questions";
import { videoQuestionType } from "../src/metrics/video_qa";
import {
  pretrainVideoLlama,
  loadVideoLlama,
  evaluateVideoLlama,
  VIDEOLLAMA_PLAN,
  VIDEOLLAMA_QUICK_EVAL,
  freshClipSet,
  orderClipSet,
  disposeClipSet,
  trackHeadAccuracy,
  objectTrackerAccuracy,
  answerClipQuestions,
  candidateLogLikelihoods,
  videoQuestionPrompt,
  rescoreVideoLlamaCard,
  trainBridges,
  videoAnswerVariables,
  type VideoLlamaPlan,
  type TrainingTask,
} from "../src/pretrain/videollama";
import { SafetensorsFile, saveCheckpoint } from "../src/io/safetensors";
import { openSplit } from "../src/data/loaders";
import { generateWorld } from "../src/data/world";
import { languageText } from "../src/pipelines/blip2";
import { shiftedLanguageModelLoss } from "../src/models/blip2_losses";
import { scratchFolders, scratchCheckpoints } from "./helpers/scratch";

/** Temporary folders, removed after this file's tests (test/helpers/scratch.ts). */
const scratch = scratchFolders();

const ROOT = path.join(__dirname, "..");
const WORLD = path.join(ROOT, "data", "world");
const CHECKPOINTS = path.join(ROOT, "data", "checkpoints");
const CHECKPOINT = path.join(CHECKPOINTS, "videollama");

beforeAll(async () => {
  registerNativeBackend();
  await tf.setBackend("native");
});

const track = (color: string, shape: string, over: Partial<TrackTiming> = {}): TrackTiming => ({
  object: { color, shape } as TrackTiming["object"],
  direction: "left",
  appearAt: 0,
  disappearAt: 12,
  bounces: [],
  ...over,
});

describe("derived video questions", () => {
  it("order: asked only where the frames' order decides; names in alphabetical order; none for one object", () => {
    // Appears or disappears one frame from the middle (6 of 12): "is it there at first?".
    const ask = (over: Partial<TrackTiming>) =>
      orderQuestions([track("red", "circle"), track("blue", "star", over)], 12).map((q) => [q.question, q.answer]);
    expect(ask({ appearAt: 5 })).toEqual([["is the blue star there at first?", "no"]]);
    expect(ask({ appearAt: 7 })).toEqual([["is the blue star there at first?", "no"]]);
    expect(ask({ disappearAt: 5 })).toEqual([["is the blue star there at first?", "yes"]]);
    expect(ask({ disappearAt: 7 })).toEqual([["is the blue star there at first?", "yes"]]);
    // Other change frames are not asked: their counts of visible frames (8 against 4) or the middle frame would tell.
    for (const frame of [4, 6]) {
      expect(ask({ appearAt: frame })).toEqual([]);
      expect(ask({ disappearAt: frame })).toEqual([]);
    }
    // Which bounces first: only when both bounce while visible, at different frames.
    const both = orderQuestions([track("red", "circle", { bounces: [3] }), track("blue", "star", { bounces: [2, 9] })], 12);
    expect(both.map((q) => [q.question, q.answer])).toEqual([
      ["which bounces first, the blue star or the red circle?", "blue star"],
    ]);
    expect(orderQuestions([track("red", "circle", { bounces: [3] }), track("blue", "star")], 12)).toEqual([]); // one bounces
    expect(orderQuestions([track("red", "circle", { bounces: [3] }), track("blue", "star", { bounces: [3] })], 12)).toEqual([]);
    // A bounce while invisible does not count: the circle's bounce at 8 comes after it left at 7.
    const hidden = orderQuestions(
      [track("red", "circle", { disappearAt: 7, bounces: [8] }), track("blue", "star", { bounces: [9] })],
      12,
    );
    expect(hidden.map((q) => q.question)).toEqual(["is the red circle there at first?"]);
    expect(orderQuestions([track("red", "circle", { bounces: [4] })], 12)).toEqual([]);
    expect(orderQuestions([track("red", "circle"), track("blue", "star")], 12)).toEqual([]); // nothing to order
    expect(orderQuestions([track("red", "circle"), track("blue", "star", { appearAt: 4 })], 9)).toEqual([]); // odd frames
    expect(() => orderQuestions([track("red", "circle"), track("blue", "star")], 2.5)).toThrow(
      "frames must be an integer ≥ 2, got 2.5",
    );
    for (const q of [...both, ...orderQuestions([track("red", "circle"), track("blue", "star", { appearAt: 5 })], 12)]) {
      expect(videoQuestionType(q.question)).toBe("order");
      expect(q.answers).toEqual(new Array(10).fill(q.answer));
    }
  });

  it("order: neither a bag of frames nor the middle frame tells the answers of 'there at first' apart", () => {
    // Over the four change frames asked (appears or disappears at 5 or 7 of 12), each answer has the same multiset of
    // (visible frames, visible in the middle frame): a reader of either view, or of both, is at chance.
    const views = { yes: [] as string[], no: [] as string[] };
    for (const over of [{ appearAt: 5 }, { appearAt: 7 }, { disappearAt: 5 }, { disappearAt: 7 }]) {
      const tracks = [track("red", "circle"), track("blue", "star", over)];
      const [q] = orderQuestions(tracks, 12);
      const t = tracks[1];
      views[q.answer as "yes" | "no"].push(`${t.disappearAt - t.appearAt} ${6 >= t.appearAt && 6 < t.disappearAt}`);
    }
    expect(views.yes.length).toBe(2);
    expect(views.yes.sort()).toEqual(views.no.sort());
  });

  it("audio-visual: the heard object's name and its direction; typed audio-visual; bad input named", () => {
    const tracks = [track("red", "circle", { direction: "up" }), track("blue", "star", { direction: "down" })];
    for (const heard of [0, 1]) {
      const [source, motion] = audioVisualQuestions(tracks, heard);
      expect(source.question).toBe("which object do you hear, the blue star or the red circle?");
      expect(source.answer).toBe(heard === 0 ? "red circle" : "blue star");
      expect(motion.answer).toBe(heard === 0 ? "up" : "down");
      for (const q of [source, motion]) expect(videoQuestionType(q.question)).toBe("audio-visual");
    }
    expect(() => audioVisualQuestions([tracks[0]], 0)).toThrow("needs a two-object clip, got 1 tracks");
    expect(() => audioVisualQuestions(tracks, 2)).toThrow("heard must be 0 or 1, got 2");
  });

  it("the questions that offer two candidates name them (scored as multiple choice); the open ones offer none", () => {
    const tracks = [track("red", "circle", { bounces: [4] }), track("blue", "star", { appearAt: 5, bounces: [6] })];
    const questions = [...orderQuestions(tracks, 12), ...audioVisualQuestions(tracks, 1)];
    expect(questions.map((q) => offeredCandidates(q.question))).toEqual([
      ["yes", "no"],
      ["blue star", "red circle"],
      ["blue star", "red circle"],
      undefined, // which way does the object you hear move: open
    ]);
    for (const q of questions.slice(0, 3)) expect(offeredCandidates(q.question)).toContain(q.answer);
    // None of the world's own questions offers candidates: they stay open (greedy answers).
    const split = openSplit(WORLD, "videos", "test");
    for (const record of split.records)
      for (const q of record.vqa) expect(offeredCandidates(q.question), q.question).toBeUndefined();
  });

  it("the stored clips' tracks give order questions whose answers the tracks bear out", () => {
    const split = openSplit(WORLD, "videos", "test");
    let asked = 0;
    for (const record of split.records) {
      const tracks = trackTimings(record.tracks);
      for (const q of orderQuestions(tracks, record.frames)) {
        asked++;
        const named = /^is the ([a-z ]+) there at first\?$/.exec(q.question);
        if (!named) continue;
        const t = tracks.find((x) => `${x.object.color} ${x.object.shape}` === named[1])!;
        expect(q.answer === "yes" ? t.appearAt === 0 && t.disappearAt < record.frames : t.appearAt > 0).toBe(true);
      }
    }
    expect(asked).toBeGreaterThan(0);
    expect(() => trackTimings([{ ...split.records[0].tracks[0], appear_at: "x" }])).toThrow('track 0 has appear_at "x"');
  });
});

/** Seconds, not minutes: a few clips and steps over the real backbones. */
const TINY: VideoLlamaPlan = {
  ...VIDEOLLAMA_PLAN,
  steps: { objects: 3, tracks: 4, video: 4, audio: 2, joint: 4 },
  objectBatchSize: 2,
  batchSize: 4,
  storedTrainClips: 4,
  freshClips: 4,
  audioVisualClips: 4,
  freshSoundEvents: 2,
  storedSoundEvents: 4,
  // Every kind of batch in stage C's 4 steps, and the silent ones training the video projections ("sound-less", the
  // choice before the tracker; the plan's "none" leaves them as stage A did), so that the tiny run covers both roles.
  jointCycle: ["audio-visual", "sound", "direction", "mixture"],
  jointVideoTraining: "sound-less",
};
const TINY_EVAL = { storedLimit: 2, testClips: 2, testAudioVisualClips: 2, testOrderClips: 2, soundEventLimit: 4 };

/** A folder with the committed backbones linked in, so a checkpoint can sit beside them. */
const backboneCheckpoints = () => scratchCheckpoints(scratch, "mllm-labs-videollama-", ["vision", "audio", "language"]);

describe("pretrainVideoLlama (tiny plan)", () => {
  it("writes a bridge-only folder that loads back to the same logits, with every metric and baseline, and leaks no tensors", async () => {
    const root = backboneCheckpoints();
    try {
      const before = tf.memory().numTensors;
      const lines: string[] = [];
      const out = path.join(root, "videollama");
      const { model, card } = await pretrainVideoLlama({ world: WORLD, out, log: (l) => lines.push(l) }, TINY, TINY_EVAL);
      expect(card.steps).toBe(17);
      for (const stage of [
        "stage O (objects) step 3/3",
        "stage T (tracks) step 4/4",
        "stage A (video) step 4/4",
        "stage C (audio-visual) step 4/4",
      ])
        expect(
          lines.some((l) => l.includes(stage)),
          stage,
        ).toBe(true);
      for (const key of [
        "video_qa_overall",
        "video_qa_direction",
        "video_qa_order",
        "audio_visual",
        "audio_event_accuracy",
        "caption_cider_d",
      ])
        expect(Number.isFinite(card.metrics[key]), key).toBe(true);
      // The order clips (testOrderClips: 2) each carry at least one order question, beside the test clips' own.
      const counts = (card as unknown as { metric_counts: Record<string, number> }).metric_counts;
      expect(counts.video_qa_order).toBeGreaterThanOrEqual(2);
      expect((counts.video_qa_order_there_at_first ?? 0) + (counts.video_qa_order_bounces_first ?? 0)).toBe(
        counts.video_qa_order,
      );
      const baselines = card.baselines as Record<string, Record<string, number>>;
      expect(Object.keys(baselines).sort()).toEqual([
        "audio_only",
        "blind",
        "chance",
        "shuffled_frames",
        "single_middle_frame",
        "video_only",
        "without_sound",
      ]);
      expect(Number.isFinite(baselines.video_only.audio_visual)).toBe(true);
      expect(Number.isFinite(baselines.shuffled_frames.video_qa_direction)).toBe(true);
      // Only the bridges (and the track head) are saved; stage A's video bridge and head beside them.
      const saved = SafetensorsFile.open(path.join(out, "model.safetensors"));
      const keys = saved.keys();
      saved.close();
      expect(keys.length).toBeGreaterThan(0);
      expect(
        keys.every((k) =>
          ["video_bridge.", "video_track_head.", "video_object_tracker.", "audio_bridge."].some((prefix) => k.startsWith(prefix)),
        ),
        keys.join(),
      ).toBe(true);
      expect(keys).toContain("video_track_head.code_projection.weight");
      expect(keys).toContain("video_object_tracker.cell_centre.weight");
      expect((card as unknown as { stage_steps: Record<string, number> }).stage_steps.objects).toBe(3);
      const videoOnlyFile = SafetensorsFile.open(path.join(out, "video_only.safetensors"));
      expect(videoOnlyFile.keys().every((k) => k.startsWith("video_bridge.") || k.startsWith("video_track_head."))).toBe(true);
      // Only what stage A trained: the video projection and the code tokens' map (the Q-Former is frozen after stage T).
      expect(videoOnlyFile.keys().sort()).toEqual([
        "video_bridge.projection.bias",
        "video_bridge.projection.weight",
        "video_track_head.code_projection.bias",
        "video_track_head.code_projection.weight",
      ]);
      videoOnlyFile.close();
      const config = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
      expect(config.mllm_labs.language_checkpoint).toBe("../language");

      // Loaded back: the same logits for frames + sound + text.
      const loaded = loadVideoLlama(out);
      const text = languageText(loaded.tokenizer, ["question: which way does the red circle move at first? answer:"]);
      const frames = tf.randomNormal([1, 12, model.tokensPerFrame, 128], 0, 1, "float32", 5);
      const segments = tf.randomNormal([1, 5, 1, 128], 0, 1, "float32", 6);
      const detections = tf.randomNormal([1, 12, 30, 3], 0, 1, "float32", 7);
      const inputs = { frameFeatures: frames, frameDetections: detections, segmentFeatures: segments, inputIds: text.inputIds };
      const largestDifference = (x: typeof model, y: typeof model, given: typeof inputs) =>
        tf.tidy(() => tf.max(tf.abs(tf.sub(x.forward(given).logits, y.forward(given).logits))).arraySync() as number);
      expect(largestDifference(model, loaded.model, inputs)).toBe(0);
      // The video-only twin is stage A's bridge: it differs from the final one (stage C trained it further).
      const framesOnly = { frameFeatures: frames, frameDetections: detections, inputIds: text.inputIds };
      expect(largestDifference(loaded.videoOnly!, loaded.model, framesOnly)).toBeGreaterThan(0);
      // The code tokens read the detections (the tracker's), in the order the frames are shown.
      const reversed = tf.reverse(detections, 1);
      expect(largestDifference(loaded.model, loaded.model, { ...framesOnly })).toBe(0);
      expect(
        tf.tidy(
          () =>
            tf
              .max(
                tf.abs(
                  tf.sub(
                    loaded.model.forward(framesOnly).logits,
                    loaded.model.forward({ ...framesOnly, frameDetections: reversed }).logits,
                  ),
                ),
              )
              .arraySync() as number,
        ),
      ).toBeGreaterThan(0);
      expect(() => loaded.model.forward({ frameFeatures: frames, inputIds: text.inputIds })).toThrow(
        "this model's code tokens come from its object tracker; give frameDetections with frameFeatures",
      );
      tf.dispose([frames, segments, detections, reversed, text.inputIds, text.attentionMask, text.labels]);

      // The track head on a few fresh clips: rates in [0, 1], every object scored; frames are required.
      const fresh = await freshClipSet(loaded.model, 6, 99, { sound: false });
      const head = await trackHeadAccuracy(loaded.model, fresh, { frames: "shuffled" });
      expect(head.objects).toBe(fresh.tracks!.reduce((n, t) => n + t!.length, 0));
      for (const rate of [head.direction, head.positionErrorPx]) expect(rate).toBeGreaterThanOrEqual(0);
      expect(head.direction).toBeLessThanOrEqual(1);
      await expect(trackHeadAccuracy(loaded.model, fresh, { frames: "none" })).rejects.toThrow('view.frames "none" shows none');
      // The object tracker on the same clips: every object scored from its identity's track.
      expect(fresh.detections!.shape).toEqual([6, 12, 30, 3]);
      const tracked = await objectTrackerAccuracy(loaded.model, fresh, { frames: "shuffled" });
      expect(tracked.objects).toBe(head.objects);
      for (const rate of [tracked.direction, tracked.found]) {
        expect(rate).toBeGreaterThanOrEqual(0);
        expect(rate).toBeLessThanOrEqual(1);
      }
      await expect(objectTrackerAccuracy(loaded.model, fresh, { frames: "none" })).rejects.toThrow(
        'the tracker reads frames; view.frames "none" shows none',
      );

      // A question that offers two candidates is answered with the likelier one: its log-likelihood is the teacher-forced
      // loss of that answer (the mean over its tokens, times their number); greedy generation answers it otherwise.
      // Few fresh clips carry one ("which bounces first" is asked only when both objects bounce): clips that carry order
      // questions hold them (seed 99: 6 of their 9).
      disposeClipSet(fresh);
      const order = await orderClipSet(loaded.model, 8, 99);
      expect(order.captions).toEqual([]);
      expect(order.questions.every((q) => videoQuestionType(q.question) === "order")).toBe(true);
      const offered = order.questions.filter((q) => offeredCandidates(q.question)).slice(0, 4);
      expect(offered.length).toBeGreaterThan(0);
      const chosen = await answerClipQuestions(loaded.model, loaded.tokenizer, order, offered);
      offered.forEach((q, k) => expect(offeredCandidates(q.question)).toContain(chosen[k]));
      const rows = offeredCandidates(offered[0].question)!.map((candidate) => ({ ...offered[0], candidate }));
      const likelihoods = await candidateLogLikelihoods(loaded.model, loaded.tokenizer, order, rows);
      expect(chosen[0]).toBe(rows[likelihoods[0] >= likelihoods[1] ? 0 : 1].candidate);
      for (const [k, row] of rows.entries()) {
        const text = languageText(loaded.tokenizer, [videoQuestionPrompt(row.question)], [` ${row.candidate}`]);
        const frames = tf.tidy(() => order.frames!.slice([row.clip, 0, 0, 0], [1, -1, -1, -1]));
        const detected = tf.tidy(() => order.detections!.slice([row.clip, 0, 0, 0], [1, -1, -1, -1]));
        // The question (not the candidate) is the instruction that chooses the tracker's slots.
        const promptIds = loaded.tokenizer.encode(videoQuestionPrompt(row.question));
        const instruction = tf.tensor2d([promptIds], [1, promptIds.length], "int32");
        const out = loaded.model.forward({
          frameFeatures: frames,
          frameDetections: detected,
          instructionIds: instruction,
          inputIds: text.inputIds,
          attentionMask: text.attentionMask,
          labels: text.labels,
        });
        const answerTokens = (await text.labels.data()).filter((id) => id >= 0).length;
        expect(likelihoods[k]).toBeCloseTo(-(await out.loss!.data())[0] * answerTokens, 3);
        tf.dispose([
          frames,
          detected,
          instruction,
          out.logits,
          out.attentionMask,
          out.loss!,
          out.videoPrompt!,
          text.inputIds,
          text.attentionMask,
          text.labels,
        ]);
      }
      // Rows of different questions (different lengths, so right padding) score the same in one batch as one by one;
      // the blind LLM scores the text alone, as its own forward pass does.
      const mixed = order.questions
        .filter((q) => offeredCandidates(q.question))
        .flatMap((q) => offeredCandidates(q.question)!.map((candidate) => ({ ...q, candidate })));
      const together = await candidateLogLikelihoods(loaded.model, loaded.tokenizer, order, mixed);
      const alone = await candidateLogLikelihoods(loaded.model, loaded.tokenizer, order, mixed, {}, { batchSize: 1 });
      together.forEach((value, k) => expect(value).toBeCloseTo(alone[k], 3));
      const [blindRow] = await candidateLogLikelihoods(loaded.model, loaded.tokenizer, order, [rows[0]], { frames: "none" });
      {
        const text = languageText(loaded.tokenizer, [videoQuestionPrompt(rows[0].question)], [` ${rows[0].candidate}`]);
        const blindLoss = tf.tidy(() =>
          shiftedLanguageModelLoss(
            loaded.model.languageModel.forward({ inputIds: text.inputIds, attentionMask: text.attentionMask }).logits,
            text.labels,
          ),
        );
        const answerTokens = (await text.labels.data()).filter((id) => id >= 0).length;
        expect(blindRow).toBeCloseTo(-(await blindLoss.data())[0] * answerTokens, 3);
        tf.dispose([blindLoss, text.inputIds, text.attentionMask, text.labels]);
      }
      await expect(
        candidateLogLikelihoods(loaded.model, loaded.tokenizer, order, [rows[0]], { frames: "all", sound: true }),
      ).rejects.toThrow("this set has no sound");
      const spelt = await answerClipQuestions(loaded.model, loaded.tokenizer, order, offered, {}, { multipleChoice: false });
      expect(spelt).toHaveLength(offered.length); // the greedy answers, whatever they spell
      disposeClipSet(order);

      // The card's quick eval is what evaluateVideoLlama gives on the loaded folder.
      const again = await evaluateVideoLlama(loaded, WORLD, { ...VIDEOLLAMA_QUICK_EVAL, ...TINY_EVAL });
      const quick = (card as unknown as { quick_eval: { metrics: Record<string, number> } }).quick_eval;
      for (const [name, value] of Object.entries(again.metrics)) expect(value, name).toBeCloseTo(quick.metrics[name], 6);
      loaded.dispose();
      model.dispose();
      expect(tf.memory().numTensors, "tensors leaked").toBe(before);

      // Rescoring rewrites the card's numbers with the current evaluation (here the same: nothing changes) and keeps the
      // earlier ones with the reason; the weights are not touched; a card without a reason, or of another model, is refused.
      const weights = fs.readFileSync(path.join(out, "model.safetensors"));
      const rescore = await rescoreVideoLlamaCard(out, WORLD, "a test", { evaluation: TINY_EVAL });
      expect(rescore.changed).toEqual({});
      const rescored = JSON.parse(fs.readFileSync(path.join(out, "card.json"), "utf8"));
      expect(rescored.metrics).toEqual(card.metrics);
      expect(rescored.rescored).toEqual([{ reason: "a test", earlier_metrics: card.metrics, earlier_baselines: card.baselines }]);
      expect(fs.readFileSync(path.join(out, "README.md"), "utf8")).toContain(
        "## Rescored after training (the same weights)\n\n1. a test",
      );
      expect(fs.readdirSync(out).filter((f) => f.endsWith(".partial"))).toEqual([]);
      await expect(
        rescoreVideoLlamaCard(out, WORLD, "other sizes", { evaluation: { ...TINY_EVAL, testClips: 3 } }),
      ).rejects.toThrow(/the rescoring asked .* questions, the card .*; pass the card's evaluation sizes/);
      expect(fs.readFileSync(path.join(out, "model.safetensors")).equals(weights)).toBe(true);
      await expect(rescoreVideoLlamaCard(out, WORLD, " ")).rejects.toThrow("say why the card is rescored");
      await expect(rescoreVideoLlamaCard(path.join(CHECKPOINTS, "language"), WORLD, "x")).rejects.toThrow(
        /is a "[a-z_]+" card, not mllm_video_llama/,
      );
      expect(tf.memory().numTensors, "tensors leaked by the rescoring").toBe(before);

      // A video-only file that lacks what stage A trained is refused, not filled in from the final model.
      const partial = path.join(root, "partial");
      fs.mkdirSync(partial);
      for (const file of fs.readdirSync(out)) fs.copyFileSync(path.join(out, file), path.join(partial, file));
      const stageA = SafetensorsFile.open(path.join(out, "video_only.safetensors"));
      const kept = Object.fromEntries(
        stageA
          .keys()
          .filter((k) => !k.startsWith("video_bridge.projection."))
          .map((k) => [k, stageA.tensor(k)]),
      );
      stageA.close();
      await saveCheckpoint(partial, kept, { base: "video_only" });
      tf.dispose(Object.values(kept));
      expect(() => loadVideoLlama(partial)).toThrow(
        /video_only\.safetensors lacks 2 of stage A's tensors \(video_bridge\.projection/,
      );

      await expect(pretrainVideoLlama({ world: WORLD, out: path.join(root, "elsewhere", "videollama") }, TINY)).rejects.toThrow(
        /the frozen backbone .*vision is missing \(make it with npm run pretrain -- vision\)/,
      );
      expect(() => loadVideoLlama(path.join(CHECKPOINTS, "language"))).toThrow(
        /is not an mllm-labs VideoLLaMA bridge checkpoint \(expected model_type "mllm_video_llama"/,
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 600_000);
});

// Stage C's `jointVideoTraining` rests on a task's `trains`: a batch updates only the variables its task names, though
// its loss depends on others too (here frames + sound reach both bridges).
describe("trainBridges: a task's batches train only the variables it names", () => {
  it.runIf(fs.existsSync(path.join(CHECKPOINT, "card.json")))(
    "frames + sound batches that train the audio bridge leave the video projection",
    async () => {
      const loaded = loadVideoLlama(CHECKPOINT);
      const set = await freshClipSet(loaded.model, 2, 99);
      try {
        const before = tf.memory().numTensors;
        const videoVariables = videoAnswerVariables(loaded.model);
        const audioVariables = loaded.model.audioBridge.trainableParameters();
        const snapshot = () => Promise.all([...videoVariables, ...audioVariables].map(async (v) => Array.from(await v.data())));
        const changed = (a: number[][], b: number[][], from: number, to: number) =>
          a.slice(from, to).some((values, k) => values.some((x, i) => x !== b[from + k][i]));
        const task = (trains?: tf.Variable[]): TrainingTask => ({
          name: "audio-visual",
          set,
          items: set.questions.map((q) => ({ clip: q.clip, prompt: videoQuestionPrompt(q.question), target: ` ${q.answer}` })),
          view: { frames: "all", sound: true },
          ...(trains ? { trains } : {}),
        });
        const run = (tasks: TrainingTask[]) =>
          trainBridges(loaded.model, loaded.tokenizer, tasks, {
            steps: 2,
            learningRate: 1e-2,
            batchSize: 2,
            seed: 5,
            variables: [...videoVariables, ...audioVariables],
            label: "test",
          });
        const split = videoVariables.length;
        const all = audioVariables.length + split;
        const start = await snapshot();
        await run([task(audioVariables)]);
        const afterAudioOnly = await snapshot();
        expect(changed(start, afterAudioOnly, 0, split), "the video projection moved").toBe(false);
        expect(changed(start, afterAudioOnly, split, all), "the audio bridge did not move").toBe(true);
        // Without `trains` the same batches move both: the video projection's stillness above is the restriction's.
        await run([task()]);
        const afterBoth = await snapshot();
        expect(changed(afterAudioOnly, afterBoth, 0, split), "the video projection did not move").toBe(true);
        expect(tf.memory().numTensors, "tensors leaked by trainBridges").toBe(before);
      } finally {
        disposeClipSet(set);
        loaded.dispose();
      }
    },
    120_000,
  );
});

describe("stage C's plan (jointCycle, jointVideoTraining)", () => {
  it("refuses an unknown batch, an unknown training, and batches that would train nothing, before it loads anything", async () => {
    const out = path.join(scratch("mllm-labs-videollama-plan-"), "videollama"); // no backbones beside it: the plan is checked first
    const refuse = (plan: Partial<Record<keyof VideoLlamaPlan, unknown>>, message: string) =>
      expect(pretrainVideoLlama({ world: WORLD, out }, { ...TINY, ...plan } as VideoLlamaPlan)).rejects.toThrow(message);
    await refuse(
      { jointCycle: ["audio-visual", "speech"] },
      'plan.jointCycle must list batches among audio-visual, sound, direction, mixture, captions, got ["audio-visual","speech"]',
    );
    await refuse({ jointCycle: [] }, "got []");
    await refuse(
      { jointVideoTraining: "some" },
      'plan.jointVideoTraining must be one of "all", "sound-less", "none", got "some"',
    );
    await refuse(
      { jointCycle: ["audio-visual", "direction"], jointVideoTraining: "none" },
      'plan.jointCycle holds ["direction"] batches, which train nothing when plan.jointVideoTraining is "none"',
    );
    // A valid plan gets past the checks to the missing backbones.
    await refuse({ jointCycle: ["audio-visual", "sound"], jointVideoTraining: "none" }, "the frozen backbone");
  });
});

describe("the committed checkpoint (data/checkpoints/videollama)", () => {
  const hasCheckpoint = fs.existsSync(path.join(CHECKPOINT, "card.json"));
  const card = hasCheckpoint ? JSON.parse(fs.readFileSync(path.join(CHECKPOINT, "card.json"), "utf8")) : undefined;

  it.runIf(hasCheckpoint)(
    "fits the size budget, and mllm-labs eval's loader reproduces the card's quick eval without leaks",
    async () => {
      const bytes = ["model.safetensors", "video_only.safetensors"].reduce(
        (sum, name) => sum + fs.statSync(path.join(CHECKPOINT, name)).size,
        0,
      );
      // 2.0M float32 parameters: the merged frame keys (17 tokens × 128 = 2,176 inputs) widen the video Q-Former's key and
      // value projections to 1.1M of them, the object tracker has 0.19M (its cells' detector reads 9 × 128 inputs);
      // video_only.safetensors holds only what stage A trained (0.1 MB). Lab 03's checkpoints together: under 15 MB.
      expect(bytes).toBeLessThanOrEqual(9e6);
      const before = tf.memory().numTensors;
      const loaded = loadVideoLlama(CHECKPOINT);
      const result = await evaluateVideoLlama(loaded, WORLD, { ...card.quick_eval.args });
      loaded.dispose();
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      const close = (value: number, stored: number, what: string) =>
        expect(Math.abs(value - stored), `${what}: eval ${value}, card ${stored}`).toBeLessThanOrEqual(0.01);
      expect(Object.keys(result.metrics).sort()).toEqual(Object.keys(card.quick_eval.metrics).sort());
      for (const [name, value] of Object.entries(result.metrics)) close(value, card.quick_eval.metrics[name], name);
      for (const [baseline, values] of Object.entries(result.baselines))
        for (const [name, value] of Object.entries(values))
          close(value, card.quick_eval.baselines[baseline][name], `${baseline} ${name}`);
    },
    300_000,
  );

  it.runIf(hasCheckpoint)(
    "trained in under 30 minutes; captions and sound events read the clip (CIDEr-D above one frame and blind, sounds above blind and chance)",
    () => {
      expect(card.train_seconds).toBeLessThanOrEqual(30 * 60);
      expect(card.metrics.caption_cider_d).toBeGreaterThan(card.baselines.single_middle_frame.caption_cider_d);
      expect(card.metrics.caption_cider_d).toBeGreaterThan(card.baselines.blind.caption_cider_d);
      expect(card.metrics.audio_event_accuracy).toBeGreaterThan(card.baselines.blind.audio_event_accuracy + 0.3);
      expect(card.metrics.audio_event_accuracy).toBeGreaterThan(card.baselines.chance.audio_event_accuracy + 0.3);
    },
  );

  // Issue 17's temporal targets: direction and order at least 0.2 above the same model shown the middle frame and shown
  // the frames shuffled. The binomial standard error of a difference of two rates near 0.5 on n questions is at most
  // sqrt(2 · 0.25 / n) (less when the two answers agree).
  const binomialError = (p: number, n: number) => Math.sqrt((p * (1 - p)) / n);
  const differenceError = (n: number) => Math.sqrt((2 * 0.25) / n);
  const margins = (metric: string) =>
    ["single_middle_frame", "shuffled_frames"].map((baseline) => ({
      baseline,
      margin: card.metrics[metric] - card.baselines[baseline][metric],
    }));

  // Order (docs/lab03-plan.md, "Seventh round"): the questions are asked only where the frames' order decides them, and
  // answered as multiple choice. Met through "is the X there at first?"; "which bounces first" is at chance, which the
  // test states too, so that the day it is learnt the note and this test change with it.
  it.runIf(hasCheckpoint)("order at least 0.2 above the single-frame and the shuffled-order baselines", () => {
    for (const { baseline, margin } of margins("video_qa_order"))
      expect(margin, `order vs ${baseline}`).toBeGreaterThanOrEqual(0.2);
    const n = card.metric_counts.video_qa_order_there_at_first;
    expect(card.metrics.video_qa_order_there_at_first).toBeGreaterThan(0.5 + 0.3);
    for (const baseline of ["single_middle_frame", "shuffled_frames"])
      expect(Math.abs(card.baselines[baseline].video_qa_order_there_at_first - 0.5), baseline).toBeLessThan(
        3 * binomialError(0.5, n),
      );
    const bounces = card.metric_counts.video_qa_order_bounces_first;
    expect(Math.abs(card.metrics.video_qa_order_bounces_first - 0.5)).toBeLessThan(3 * binomialError(0.5, bounces));
  });

  // Direction: the object tracker's tracks in the code tokens, the question choosing which identities fill them
  // (docs/lab03-plan.md, "Twelfth round"). Before the tracker the margin over shuffled frames was 0.118–0.206 over nine
  // full runs ("Ninth round", "Tenth round"), under the target; with it, on the letter, by more than twice the sampling
  // error of the difference.
  it.runIf(hasCheckpoint)("direction at least 0.2 above the single-frame and the shuffled-order baselines", () => {
    const error = differenceError(card.metric_counts.video_qa_direction);
    for (const { baseline, margin } of margins("video_qa_direction"))
      expect(margin, `direction vs ${baseline}`).toBeGreaterThanOrEqual(0.2 + 2 * error);
  });

  // Issue 17's audio-visual target: at least 0.3 above the video-only model (stage A's bridge). On the letter the margin
  // is helped by the motion half ("which way does the object you hear move?"), which the video-only model never saw
  // (0.013 there; credited with chance the margin is 0.23); so the source half ("which object do you hear, the A or the B?",
  // multiple choice) must also beat chance by two binomial errors and the same weights shown the frames without the
  // sound by 0.3: the answer comes from the sound. (Seed 7's run: +0.326 on the letter, +0.286 over the same weights
  // without sound, within a sampling error of 0.3; docs/lab03-plan.md.)
  it.runIf(hasCheckpoint)(
    "audio-visual at least 0.3 above the video-only model, and the heard object named from the sound",
    () => {
      expect(card.metrics.audio_visual - card.baselines.video_only.audio_visual).toBeGreaterThanOrEqual(0.3);
      const n = card.metric_counts.audio_visual / 2;
      expect(card.metrics.audio_visual_source).toBeGreaterThan(0.5 + 2 * binomialError(0.5, n));
      expect(card.metrics.audio_visual_source - card.baselines.without_sound.audio_visual_source).toBeGreaterThanOrEqual(0.3);
    },
  );

  // Issue 17: the targets must hold on worlds generated with other seeds. A world of seed 5 (its stored test clips and
  // sound events) and the eval's seed 5 (every fresh test, order and audio-visual clip, and the shuffled order), so no
  // clip is one the card was measured on (bench/videollama_other_seeds.js runs seeds 5 and 6; docs/lab03-plan.md,
  // "Eighth round"). Every target on the letter (seeds 5 and 6: direction +0.360 and +0.323 over shuffled frames, order
  // +0.240 and +0.288, audio-visual +0.447 and +0.390; "Twelfth round").
  it.runIf(hasCheckpoint)(
    "on a world of another seed: direction and order at least 0.2 above both baselines, audio-visual 0.3 above video only",
    async () => {
      const world = scratch("mllm-labs-videollama-seed5-");
      await generateWorld({ out: world, seed: 5, sets: ["videos", "audio"], log: () => {} });
      const before = tf.memory().numTensors;
      const loaded = loadVideoLlama(CHECKPOINT);
      let result;
      try {
        result = await evaluateVideoLlama(loaded, world, { seed: 5, skipCaptions: true });
      } finally {
        loaded.dispose();
      }
      expect(tf.memory().numTensors, "tensors leaked by eval").toBe(before);
      const { metrics, baselines, counts } = result;
      expect(counts.video_qa_order).toBeGreaterThan(400);
      for (const baseline of ["single_middle_frame", "shuffled_frames"])
        for (const metric of ["video_qa_order", "video_qa_direction"])
          expect(metrics[metric] - baselines[baseline][metric], `${metric} vs ${baseline}`).toBeGreaterThanOrEqual(0.2);
      expect(metrics.audio_visual - baselines.video_only.audio_visual).toBeGreaterThanOrEqual(0.3);
      expect(metrics.audio_visual_source - baselines.without_sound.audio_visual_source).toBeGreaterThanOrEqual(0.3);
    },
    600_000,
  );
});
