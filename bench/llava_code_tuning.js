/**
 * How far lab 02's code target moves when the LLaVA is tuned on drawing programs alone (docs/lab02-plan.md, "Code and
 * POPE are training signal"): the committed llava's projector and LLM tuned in full (the tower frozen, as in stage 2)
 * on the stored code train split plus FRESH scenes drawn as the world draws the code set (1–3 objects), each program
 * written in reading order (objects sorted by y, then x: the render, and so `code_same_pixels`, does not depend on the
 * order; the exact-program rate compares with the world's order and is lower for it), STEPS steps of 16 at peak
 * learning rate LR (stage 2's warm-up and cosine), then `evaluateLlava`'s code set (the 50 stored test images).
 * A diagnostic: it writes nothing and prints one JSON line with the metrics, the seconds and the loss curve.
 * `node bench/llava_code_tuning.js [STEPS=6000] [FRESH=24000] [LR=1e-3]` (6,000 steps: about 32 minutes on one thread
 * beside another run; 0.20 s a step alone with two threads). Measured: 6,000 steps same pixels 0.40; `9000 32000` 0.80.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

void (async () => {
  const [steps, fresh, learningRate] = [
    Number(process.argv[2] ?? 6000),
    Number(process.argv[3] ?? 24000),
    Number(process.argv[4] ?? 1e-3),
  ];
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, featureCache, runStage, evaluateLlava } = dist("pretrain/llava");
  const { LlavaTrainer, llavaBatch } = dist("pretrain/llava_training");
  const { tokenizeConversation } = dist("data/conversation");
  const { conversationFromPairs, CODE_INSTRUCTIONS } = dist("data/llava_instructions");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { sceneToProgram, parseProgram } = dist("data/drawing_language");
  const { openSplit } = dist("data/loaders");
  const { Random } = dist("util/random");
  const world = path.join(root, "data/world");
  const { model, tokenizer } = loadLlava(path.join(root, "data/checkpoints/llava"));
  const { inReadingOrder: readingOrder } = dist("pretrain/llava_code"); // the library's, as llava-code writes programs
  const examples = [];
  const split = openSplit(world, "code", "train");
  for (const record of split.records)
    examples.push({
      image: { key: path.join(split.dir, record.image) },
      program: sceneToProgram(readingOrder(parseProgram(record.program))),
    });
  const random = new Random(1234); // apart from the world's splits and llava's draws
  for (let k = 0; k < fresh; k++) {
    const scene = readingOrder(sampleScene(random, { maxObjects: 3 }));
    examples.push({
      image: { key: `fresh/code/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data },
      program: sceneToProgram(scene),
    });
  }
  const cache = featureCache(
    model,
    examples.map((e) => e.image),
  );
  await cache.precompute(examples.map((e) => e.image.key)); // the tower is frozen: features once
  const trainer = new LlavaTrainer(model, { stage: 2 });
  let run;
  try {
    run = await runStage(
      "code tuning",
      trainer,
      examples,
      steps,
      { batchSize: 16, learningRate, seed: 99, log: console.log },
      async (chosen, rnd) =>
        llavaBatch(
          chosen.map((e) =>
            tokenizeConversation(
              tokenizer,
              conversationFromPairs([
                { instruction: CODE_INSTRUCTIONS[rnd.int(0, CODE_INSTRUCTIONS.length)], response: e.program },
              ]),
              { imageTokens: model.imageTokensPerImage },
            ),
          ),
          tokenizer.padTokenId,
          await cache.features(chosen.map((e) => e.image.key)),
        ),
    );
  } finally {
    trainer.dispose();
    cache.clear();
  }
  const { metrics } = await evaluateLlava(model, tokenizer, world, { sets: ["code"] });
  model.dispose();
  console.log(JSON.stringify({ steps, fresh, learningRate, seconds: run.seconds, metrics, curve: run.curve }));
})();
