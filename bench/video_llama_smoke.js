/**
 * A short VideoLLaMA video-branch run on the stored clips, to check the pipeline end to end before the
 * real schedule (docs/lab03-plan.md): the nano bridges between the frozen backbones, frame features
 * cached, trained on the train split's questions, then greedy answers on the val + test clips for the
 * model and the lab's baselines (shuffled frame order, single middle frame, blind LLM), per question type.
 * `node bench/video_llama_smoke.js [steps] [temporalModel]` (default 250 steps, "positions").
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { VideoLlamaForConditionalGeneration, VIDEO_LLAMA_PRESETS } = dist("models/video_llama");
const { shuffledFrameOrder, singleMiddleFrame } = dist("data/temporal_sampling");
const { openSplit, videoTensor } = dist("data/loaders");
const { languageText } = dist("pipelines/blip2");
const { loadLlama, loadCLIPVision, loadAudioEncoder } = dist("io/pretrained");
const { loadTokenizer } = dist("tokenizer/tokenizer");
const { videoQaAccuracyByType } = dist("metrics/video_qa");
const { learningRateAt } = dist("pretrain/common");
const { AdamW } = dist("train/adamw");
const { Random } = dist("util/random");

const root = path.join(__dirname, "..");
const checkpoints = path.join(root, "data/checkpoints");
const world = path.join(root, "data/world");
const steps = Number(process.argv[2] ?? 250);
const temporalModel = process.argv[3] ?? "positions";
const prompt = (question) => `question: ${question} answer:`;

async function splitFeatures(model, split) {
  const parts = [];
  for (let start = 0; start < split.records.length; start += 16) {
    const records = split.records.slice(start, start + 16);
    const pixels = await videoTensor(
      records.map((r) => path.join(split.dir, r.video)),
      12,
    );
    parts.push(tf.tidy(() => model.frameFeatures(pixels)));
    pixels.dispose();
  }
  const features = tf.concat(parts, 0); // [N, 12, K, Dv]
  tf.dispose(parts);
  return features;
}

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const t0 = Date.now();
  const language = loadLlama(path.join(checkpoints, "language"));
  const tokenizer = loadTokenizer(path.join(checkpoints, "language"));
  const model = new VideoLlamaForConditionalGeneration(
    {
      ...VIDEO_LLAMA_PRESETS["video-llama-nano"],
      temporalModel,
      vision: {},
      audio: { hiddenSize: 1, intermediateSize: 1, numLayers: 1, numHeads: 1 },
      text: language.config,
    },
    {
      vision: loadCLIPVision(path.join(checkpoints, "vision")),
      audio: loadAudioEncoder(path.join(checkpoints, "audio")),
      language,
    },
  );
  const train = openSplit(world, "videos", "train");
  const evaluation = [openSplit(world, "videos", "val"), openSplit(world, "videos", "test")];
  const trainFeatures = await splitFeatures(model, train);
  const evalParts = await Promise.all(evaluation.map((split) => splitFeatures(model, split)));
  const evalFeatures = tf.concat(evalParts, 0);
  tf.dispose(evalParts);
  const evalRecords = evaluation.flatMap((split) => split.records);
  const featureSeconds = (Date.now() - t0) / 1000;

  const items = train.records.flatMap((r, clip) => r.vqa.map((q) => ({ clip, question: q.question, answer: q.answer })));
  const random = new Random(3);
  const optimizer = new AdamW({ learningRate: 1e-3, weightDecay: 0 });
  const losses = [];
  const t1 = Date.now();
  for (let step = 0; step < steps; step++) {
    const batch = Array.from({ length: 32 }, () => items[random.int(0, items.length)]);
    const text = languageText(
      tokenizer,
      batch.map((i) => prompt(i.question)),
      batch.map((i) => ` ${i.answer}`),
    );
    const frames = tf.gather(
      trainFeatures,
      batch.map((i) => i.clip),
    );
    optimizer.learningRate = learningRateAt(step, steps, 1e-3, 25);
    const loss = optimizer.minimize(
      () =>
        model.forward({ frameFeatures: frames, inputIds: text.inputIds, attentionMask: text.attentionMask, labels: text.labels })
          .loss,
      model.videoBridge.trainableParameters(),
    );
    losses.push((await loss.data())[0]);
    tf.dispose([loss, frames, text.inputIds, text.attentionMask, text.labels]);
  }
  const trainSeconds = (Date.now() - t1) / 1000;

  const questions = evalRecords.flatMap((r, clip) => r.vqa.map((q) => ({ clip, ...q })));
  const order = new Random(11);
  const variants = {
    model: () => evalRecords.map(() => [...Array(12).keys()]),
    shuffled: () => evalRecords.map(() => shuffledFrameOrder([...Array(12).keys()], order)),
    single_middle_frame: () => evalRecords.map(() => singleMiddleFrame([...Array(12).keys()])),
  };
  const decode = (row) =>
    tokenizer
      .decode(row.includes(tokenizer.eosTokenId) ? row.slice(0, row.indexOf(tokenizer.eosTokenId)) : row, {
        skipSpecialTokens: true,
      })
      .trim();
  const results = {};
  for (const [name, indices] of Object.entries({ ...variants, blind: undefined })) {
    const perClip = indices?.();
    const predictions = [];
    for (let start = 0; start < questions.length; start += 64) {
      const batch = questions.slice(start, start + 64);
      const text = languageText(
        tokenizer,
        batch.map((q) => prompt(q.question)),
        undefined,
        "left",
      );
      let rows;
      if (perClip) {
        const flat = batch.flatMap((q) => perClip[q.clip].map((f) => q.clip * 12 + f));
        const [N, F, K, D] = evalFeatures.shape;
        const frames = tf.tidy(() => tf.gather(evalFeatures.reshape([N * F, K, D]), flat).reshape([batch.length, F, K, D]));
        rows = await model.generate(
          { frameFeatures: frames, inputIds: text.inputIds, attentionMask: text.attentionMask },
          { maxNewTokens: 3 },
        );
        frames.dispose();
      } else {
        const prompts = await language.generate(text.inputIds, { attentionMask: text.attentionMask, maxNewTokens: 3 });
        rows = prompts.map((row) => row.slice(text.inputIds.shape[1]));
      }
      predictions.push(...rows.map(decode));
      tf.dispose([text.inputIds, text.attentionMask, text.labels]);
    }
    const scored = videoQaAccuracyByType(
      questions.map((q, k) => ({ question: q.question, prediction: predictions[k], answers: q.answers })),
    );
    results[name] = {
      overall: +scored.overall.accuracy.toFixed(3),
      ...Object.fromEntries(Object.entries(scored.perType).map(([t, v]) => [t, +v.accuracy.toFixed(3)])),
    };
    results[name].examples = predictions.slice(0, 6);
  }
  const counts = videoQaAccuracyByType(
    questions.map((q) => ({ question: q.question, prediction: q.answer, answers: q.answers })),
  ).perType;
  console.log(
    JSON.stringify({
      suite: "video_llama_smoke",
      temporalModel,
      steps,
      batch: 32,
      featureSeconds,
      trainSeconds,
      evalQuestions: questions.length,
      counts: Object.fromEntries(Object.entries(counts).map(([t, v]) => [t, v.count])),
      loss: { first: losses.slice(0, 10).map((l) => +l.toFixed(2)), last: losses.slice(-10).map((l) => +l.toFixed(2)) },
    }),
  );
  for (const [name, result] of Object.entries(results)) console.log(JSON.stringify({ variant: name, ...result }));
  tf.dispose([trainFeatures, evalFeatures]);
  optimizer.dispose();
  model.dispose();
})();
