/**
 * LLaVA training-step times on the project's backbones (lab 02's schedules in docs/lab02-plan.md):
 * tower features, a stage-1 step on plain captions and stage-2 steps on scene and medical
 * conversations, batch 32, in CPU seconds and wall seconds per step; beside them the language
 * backbone's pretraining step (batch 32 × 64 tokens), whose 2-idle-core time the language card
 * records, as the yardstick for a machine shared with other work.
 * `node bench/llava_step.js [steps]` (default 3 timed steps after one warm-up).
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { llavaFromBackbones } = dist("pretrain/llava_setup");
const { VisionFeatureCache, LlavaTrainer, llavaBatch, disposeBatch } = dist("pretrain/llava_training");
const { tokenizePlain, tokenizeConversation } = dist("data/conversation");
const { sceneConversation, sceneCaption, storedConversation } = dist("data/llava_instructions");
const { openSplit, imageTensor } = dist("data/loaders");
const { loadLlama } = dist("io/pretrained");
const { AdamW } = dist("train/adamw");
const { crossEntropy } = dist("train/loss");
const { Random } = dist("util/random");

const root = path.join(__dirname, "..");
const steps = Number(process.argv[2] ?? 3);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Runs `step` once to warm up, then `steps` times; returns CPU-s and wall s per step. */
async function time(step) {
  const warm = step();
  await warm.data();
  warm.dispose();
  const [c0, w0] = [cpu(), Date.now()];
  for (let s = 0; s < steps; s++) {
    const loss = step();
    await loss.data();
    loss.dispose();
  }
  return { cpu: (cpu() - c0) / steps, wall: (Date.now() - w0) / 1000 / steps };
}

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const rows = [];
  // The yardstick: the language backbone's step.
  const language = loadLlama(path.join(root, "data/checkpoints/language"));
  const card = JSON.parse(require("fs").readFileSync(path.join(root, "data/checkpoints/language/card.json"), "utf8"));
  const optimizer = new AdamW({ learningRate: 1e-4 });
  const ids = tf.randomUniform([32, 65], 4, language.config.vocabSize, "int32", 3);
  const [inputs, targets] = [ids.slice([0, 0], [32, 64]), ids.slice([0, 1], [32, 64])];
  const yardstick = await time(() =>
    optimizer.minimize(() => crossEntropy(language.apply(inputs), targets), language.trainableParameters()),
  );
  const idleWall = card.train_seconds / card.steps;
  const factor = idleWall / yardstick.cpu;
  rows.push({ step: "language backbone (yardstick)", T: 64, ...yardstick, idle_estimate: idleWall });
  tf.dispose([ids, inputs, targets]);
  optimizer.dispose();
  language.dispose();

  const { model, tokenizer } = llavaFromBackbones({ root });
  const world = path.join(root, "data/world");
  const scenes = openSplit(world, "scenes", "train");
  const medical = openSplit(world, "medical", "train");
  const random = new Random(1);
  const N = model.imageTokensPerImage;
  const cache = new VisionFeatureCache(model, (keys) => imageTensor(keys));
  const records = scenes.records.slice(0, 32);
  const keys = records.map((r) => path.join(scenes.dir, r.image));
  const [c0, w0] = [cpu(), Date.now()];
  await cache.precompute(keys);
  rows.push({ step: "tower features, 32 images", T: 0, cpu: cpu() - c0, wall: (Date.now() - w0) / 1000 });
  const kinds = [
    [
      "stage 1, plain caption",
      1,
      () => records.map((r) => tokenizePlain(tokenizer, sceneCaption(r, random), { imageTokens: N })),
    ],
    [
      "stage 2, scene VQA",
      2,
      () =>
        records.map((r) =>
          tokenizeConversation(tokenizer, sceneConversation(r, random, { captionTurn: false }), { imageTokens: N }),
        ),
    ],
    [
      "stage 2, scene caption + VQA",
      2,
      () => records.map((r) => tokenizeConversation(tokenizer, sceneConversation(r, random), { imageTokens: N })),
    ],
    [
      "stage 2, medical",
      2,
      () =>
        medical.records
          .slice(0, 32)
          .map((r) => tokenizeConversation(tokenizer, storedConversation("medical", r), { imageTokens: N })),
    ],
  ];
  for (const [name, stage, examples] of kinds) {
    const trainer = new LlavaTrainer(model, { stage });
    const tokenized = examples();
    const batch = llavaBatch(tokenized, tokenizer.padTokenId, await cache.features(keys));
    rows.push({ step: name, T: batch.inputIds.shape[1], ...(await time(() => trainer.step(batch))) });
    disposeBatch(batch);
    trainer.dispose();
  }
  model.dispose();
  for (const row of rows) row.idle_estimate ??= row.cpu * factor;
  console.log("step (batch 32)                 T    CPU-s  wall-s  ≈ s on 2 idle cores");
  for (const r of rows)
    console.log(
      `${r.step.padEnd(31)} ${String(r.T).padStart(3)}  ${r.cpu.toFixed(2).padStart(6)}  ${r.wall.toFixed(2).padStart(6)}  ${r.idle_estimate.toFixed(2)}`,
    );
  for (const r of rows) console.log(JSON.stringify({ suite: "llava_step", ...r }));
})();
