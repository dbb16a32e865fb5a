/**
 * Lab 02 smoke run (the numbers in docs/lab02-plan.md): the backbones joined by `llavaFromBackbones`,
 * stage 1 for 60 steps and stage 2 for 140 steps of batch 16 on 1,600 training scenes, then greedy
 * chat on the color, shape and existence questions of 120 test scenes (VQA soft accuracy). Shows the
 * pipeline end to end; not a checkpoint run (no blind twin, ~1/20 of the planned schedule).
 * `nice -n 19 node bench/llava_smoke.js` (≈ 20 min on the shared 2-core machine).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const tf = require("@tensorflow/tfjs");
const dist = (f) => require(path.join(root, "dist/src", f));
const { initEngine } = dist("engine/init");
const { llavaFromBackbones } = dist("pretrain/llava_setup");
const { VisionFeatureCache, LlavaTrainer, llavaBatch, disposeBatch } = dist("pretrain/llava_training");
const { tokenizePlain, tokenizeConversation } = dist("data/conversation");
const { sceneConversation, sceneCaption } = dist("data/llava_instructions");
const { openSplit, imageTensor, recordBatches } = dist("data/loaders");
const { chatBatch } = dist("pipelines/llava_chat");
const { vqaAccuracy } = dist("data/vqa");
const { learningRateAt } = dist("pretrain/common");
const { Random } = dist("util/random");
void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const t0 = Date.now();
  const { model, tokenizer } = llavaFromBackbones({ root });
  const world = path.join(root, "data/world");
  const train = openSplit(world, "scenes", "train"),
    test = openSplit(world, "scenes", "test");
  const trainRecords = train.records.slice(0, 1600),
    testRecords = test.records.slice(0, 120);
  const cache = new VisionFeatureCache(model, (keys) => imageTensor(keys));
  const key = (split, r) => path.join(split.dir, r.image);
  await cache.precompute([...trainRecords.map((r) => key(train, r)), ...testRecords.map((r) => key(test, r))]);
  const N = model.imageTokensPerImage,
    B = 16,
    random = new Random(7);
  async function run(stage, steps, lr, make) {
    const trainer = new LlavaTrainer(model, { stage });
    let order = [],
      epoch = 0;
    const curve = [];
    for (let s = 0; s < steps; s++) {
      if (!order.length) order = [...recordBatches(trainRecords, B, { seed: 11, epoch: epoch++, dropLast: true })];
      const recs = order.shift();
      trainer.learningRate = learningRateAt(s, steps, lr, 10);
      const batch = llavaBatch(recs.map(make), tokenizer.padTokenId, await cache.features(recs.map((r) => key(train, r))));
      const loss = trainer.step(batch);
      curve.push((await loss.data())[0]);
      loss.dispose();
      disposeBatch(batch);
      if ((s + 1) % 20 === 0)
        console.log(
          `stage ${stage} step ${s + 1}: loss ${(curve.slice(-20).reduce((a, b) => a + b) / 20).toFixed(3)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
        );
    }
    trainer.dispose();
  }
  await run(1, 60, 2e-3, (r) => tokenizePlain(tokenizer, sceneCaption(r, random), { imageTokens: N }));
  await run(2, 140, 1e-3, (r) =>
    tokenizeConversation(tokenizer, sceneConversation(r, random, { captionTurn: false }), { imageTokens: N }),
  );
  const items = testRecords.flatMap((r) =>
    r.vqa.filter((q) => q.type === "color" || q.type === "shape" || q.type === "exist").map((q) => ({ r, q })),
  );
  const scores = {};
  const examples = [];
  for (let i = 0; i < items.length; i += 32) {
    const chunk = items.slice(i, i + 32);
    const features = await cache.features(chunk.map(({ r }) => key(test, r)));
    const replies = await chatBatch(
      model,
      tokenizer,
      chunk.map(({ q }) => [{ role: "user", content: q.question }]),
      { visionFeatures: features },
      { maxNewTokens: 4 },
    );
    features.dispose();
    replies.forEach((reply, k) => {
      const { q } = chunk[k];
      (scores[q.type] ??= []).push(vqaAccuracy(reply.text, q.answers));
      if (examples.length < 8)
        examples.push(`${q.question} → ${JSON.stringify(reply.text)} (truth ${q.answer}, stopped ${reply.stopped})`);
    });
  }
  for (const [type, s] of Object.entries(scores))
    console.log(`test ${type}: VQA accuracy ${(s.reduce((a, b) => a + b) / s.length).toFixed(3)} over ${s.length} questions`);
  examples.forEach((e) => console.log(e));
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s, tensors ${tf.memory().numTensors}`);
  model.dispose();
})();
