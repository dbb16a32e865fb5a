/**
 * llava-robust's existence rows, two ways, timed in one run (docs/lab02-plan.md, "Adopted: packed questions"): a scene's
 * questions as rounds of one conversation (the previous plan) and packed after the image as one-question branches
 * (`packBranches`, the committed plan's `packQuestions`). The same 16 scenes per step, the committed llava, a full
 * stage-2 step (projector + LLM) on random tower features of the right shape. Prints one JSON line per way with the
 * step's wall milliseconds, the tokenization's, the batch's length T, and the packed/rounds ratio.
 * `node bench/llava_packed_step.js [ROUNDS=3]` (rounds of 4 steps each way, alternating; the first round warms up).
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const root = path.join(__dirname, "..");
const dist = (file) => require(path.join(root, "dist/src", file));

void (async () => {
  const rounds = Number(process.argv[2] ?? 3);
  if (!(Number.isInteger(rounds) && rounds >= 2)) throw new Error(`ROUNDS must be an integer ≥ 2, got ${process.argv[2]}`);
  await dist("engine/init").initEngine({ backend: "native" });
  const { robustExistenceExamples, LLAVA_ROBUST_PLAN } = dist("pretrain/llava_robust");
  const { loadLlava } = dist("pretrain/llava");
  const { LlavaTrainer, llavaBatch, disposeBatch } = dist("pretrain/llava_training");
  const { tokenizeConversation } = dist("data/conversation");
  const { packBranches } = dist("data/packed_branches");
  const { Random } = dist("util/random");
  const { model, tokenizer } = loadLlava(path.join(root, "data/checkpoints/llava"));
  const examples = await robustExistenceExamples({ ...LLAVA_ROBUST_PLAN, existenceScenes: 64, packQuestions: true }, 0, false);
  const trainer = new LlavaTrainer(model, { stage: 2 });
  const Nimg = model.imageTokensPerImage;
  const Dv = model.config.vision.hiddenSize * model.config.visionFeatureLayers.length;
  const tokenize = (turns) => tokenizeConversation(tokenizer, turns, { imageTokens: Nimg });
  const ways = {
    rounds: (chosen, random) => chosen.map((e) => tokenize(e.conversation(random))),
    packed: (chosen, random) => chosen.map((e) => packBranches(e.branches(random).map(tokenize), model.config.imageTokenId)),
  };
  const totals = { rounds: { step: 0, tokenize: 0, T: 0 }, packed: { step: 0, tokenize: 0, T: 0 } };
  for (let round = 0; round < rounds; round++)
    for (const [name, build] of Object.entries(ways))
      for (let k = 0; k < 4; k++) {
        const chosen = examples.slice(k * 16, k * 16 + 16);
        let started = Date.now();
        const rows = build(chosen, new Random(k));
        const tokenizeMs = Date.now() - started;
        const batch = llavaBatch(rows, tokenizer.padTokenId, tf.randomNormal([16, Nimg, Dv], 0, 1, "float32", k));
        started = Date.now();
        const loss = trainer.step(batch);
        await loss.data();
        const stepMs = Date.now() - started;
        loss.dispose();
        disposeBatch(batch);
        if (round === 0) continue; // warm-up
        totals[name].step += stepMs;
        totals[name].tokenize += tokenizeMs;
        totals[name].T += batch.inputIds.shape[1];
      }
  const steps = 4 * (rounds - 1);
  for (const [name, total] of Object.entries(totals))
    console.log(
      JSON.stringify({
        rows: name,
        step_ms: Math.round(total.step / steps),
        tokenize_ms: Math.round(total.tokenize / steps),
        T: Math.round(total.T / steps),
        step_ratio_to_rounds: Number((total.step / totals.rounds.step).toFixed(3)),
      }),
    );
  trainer.dispose();
  model.dispose();
})();
