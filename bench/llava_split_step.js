/**
 * llava-robust's steps, one padded batch against the same rows in two parts of similar length (`splitByLength`,
 * `LlavaRobustPlan.splitByLength`; docs/lab02-plan.md, "Rows in parts of similar length"), timed in one run: the
 * committed plan's examples (existence questions packed after their image, llava's mixture replayed), batches of 16
 * drawn at random, the committed llava, a full stage-2 step (projector + LLM) on random tower features of the right
 * shape. Each step's batch is timed both ways, alternating which goes first. Prints one JSON line per way with the
 * step's wall milliseconds and padded positions, and the parts/one-batch ratio, then one with the loss's largest
 * difference between the two ways.
 * `node bench/llava_split_step.js [STEPS=12]` (the first 2 warm up).
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const root = path.join(__dirname, "..");
const dist = (file) => require(path.join(root, "dist/src", file));

void (async () => {
  const steps = Number(process.argv[2] ?? 12);
  if (!(Number.isInteger(steps) && steps >= 3)) throw new Error(`STEPS must be an integer ≥ 3, got ${process.argv[2]}`);
  await dist("engine/init").initEngine({ backend: "native" });
  const { robustExistenceExamples, LLAVA_ROBUST_PLAN } = dist("pretrain/llava_robust");
  const { loadLlava, llavaTrainingData } = dist("pretrain/llava");
  const { LlavaTrainer, llavaBatch, disposeBatch, paddedPositions, splitByLength } = dist("pretrain/llava_training");
  const { tokenizeConversation } = dist("data/conversation");
  const { packBranches } = dist("data/packed_branches");
  const { Random } = dist("util/random");
  const { model, tokenizer } = loadLlava(path.join(root, "data/checkpoints/llava"));
  const plan = { ...LLAVA_ROBUST_PLAN, existenceScenes: 2000 };
  const existence = await robustExistenceExamples(plan, 0, false);
  const mixture = (await llavaTrainingData(path.join(root, "data/world"), plan.replay, 0, false)).stage2;
  // the committed plan's share of existence rows (20,000 of 30,500), kept with 2,000 of them
  const replayed = new Random(5).shuffle(mixture).slice(0, Math.round((2000 * mixture.length) / plan.existenceScenes));
  const examples = [...existence, ...replayed];
  const trainer = new LlavaTrainer(model, { stage: 2, learningRate: 0 }); // learning rate 0: both ways see the same weights
  const Nimg = model.imageTokensPerImage;
  const Dv = model.config.vision.hiddenSize * model.config.visionFeatureLayers.length;
  const tokenize = (turns) => tokenizeConversation(tokenizer, turns, { imageTokens: Nimg });
  const draw = new Random(11);
  const totals = { "one batch": { ms: 0, padded: 0 }, parts: { ms: 0, padded: 0 } };
  let largest = 0;
  for (let step = 0; step < steps; step++) {
    const chosen = Array.from({ length: 16 }, () => examples[draw.int(0, examples.length)]);
    const random = new Random(step);
    const rows = chosen.map((e) =>
      e.branches ? packBranches(e.branches(random).map(tokenize), model.config.imageTokenId) : tokenize(e.conversation(random)),
    );
    const features = tf.randomNormal([16, Nimg, Dv], 0, 1, "float32", step);
    const lengths = rows.map((r) => r.inputIds.length);
    const cut = splitByLength(lengths);
    const ways = {
      "one batch": () => llavaBatch(rows, tokenizer.padTokenId, tf.clone(features)),
      parts: () =>
        cut.map((indices) =>
          llavaBatch(
            indices.map((k) => rows[k]),
            tokenizer.padTokenId,
            tf.gather(features, indices),
          ),
        ),
    };
    const losses = {};
    const order = step % 2 ? ["parts", "one batch"] : ["one batch", "parts"];
    for (const name of order) {
      const batch = ways[name]();
      const started = Date.now();
      const loss = trainer.step(batch);
      losses[name] = (await loss.data())[0];
      const ms = Date.now() - started;
      loss.dispose();
      disposeBatch(batch);
      if (step < 2) continue; // warm-up
      totals[name].ms += ms;
      totals[name].padded += paddedPositions(lengths, name === "parts" ? cut : [rows.map((_, k) => k)]);
    }
    largest = Math.max(largest, Math.abs(losses.parts - losses["one batch"]));
    features.dispose();
  }
  const timed = steps - 2;
  for (const [name, total] of Object.entries(totals))
    console.log(
      JSON.stringify({
        rows: name,
        step_ms: Math.round(total.ms / timed),
        padded_positions: Math.round(total.padded / timed),
        step_ratio_to_one_batch: Number((total.ms / totals["one batch"].ms).toFixed(3)),
      }),
    );
  console.log(JSON.stringify({ loss_largest_difference: Number(largest.toExponential(2)) }));
  trainer.dispose();
  model.dispose();
})();
