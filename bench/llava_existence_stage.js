/**
 * More existence questions after stage 2 (docs/lab02-plan.md, "Code and POPE are training signal"): the committed
 * llava's stage 2 continued for STEPS steps of 16 (projector + LLM, peak learning rate LR with stage 2's warm-up and
 * cosine) on SCENES fresh scenes drawn as the world's, each a conversation of POPE-style existence questions only (up to
 * three present pairs, each matched by an absent one drawn randomly, by popularity and adversarially: up to 18 rounds,
 * shuffled), mixed with the card's own stage-2 mixture (replayed so that VQA and the domains are not forgotten;
 * `REPLAY=0` leaves it out). Then POPE and VQA on the full test split. A diagnostic: it writes nothing and prints one
 * JSON line of metrics.
 * It predates `LlavaPlan.existenceStage`, which builds the same conversations inside a run (`llavaTrainingData`'s
 * `existence`, seeded from the run's seed) and keeps its own draws (seed 4321) so that the numbers in the docs stay
 * reproducible; the plan's own measurement is `npm run pretrain -- llava --ablation existence-stage --out DIR`.
 * `node bench/llava_existence_stage.js [STEPS=1000] [SCENES=10000] [LR=5e-4] [REPLAY=1]` (1,000 steps: about
 * 17 minutes on one thread beside another run).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

void (async () => {
  const [steps, count, learningRate, replay] = [
    Number(process.argv[2] ?? 1000),
    Number(process.argv[3] ?? 10000),
    Number(process.argv[4] ?? 5e-4),
    Number(process.argv[5] ?? 1),
  ];
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, featureCache, runStage, evaluateLlava, llavaTrainingData, LLAVA_PLAN } = dist("pretrain/llava");
  const { LlavaTrainer, llavaBatch } = dist("pretrain/llava_training");
  const { tokenizeConversation } = dist("data/conversation");
  const { conversationFromPairs } = dist("data/llava_instructions");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { SCENE_COUNT_WEIGHTS } = dist("data/world");
  const { buildPopeQuestions, POPE_NEGATIVES } = dist("metrics/pope");
  const { Random } = dist("util/random");
  const world = path.join(root, "data/world");
  const { model, tokenizer } = loadLlava(path.join(root, "data/checkpoints/llava"));
  const random = new Random(4321); // apart from the world's splits, llava's draws and the eval's
  const scenes = [];
  for (let k = 0; k < count; k++) {
    const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
    scenes.push({
      id: `fresh/existence/${k}`,
      objects: scene.objects,
      image: { key: `fresh/existence/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data },
    });
  }
  // Each scene's questions of all three negative kinds, one round per distinct question.
  const rounds = new Map(scenes.map((s) => [s.id, new Map()]));
  POPE_NEGATIVES.forEach((negatives, kind) => {
    for (const q of buildPopeQuestions(scenes, { negatives, perImage: 3, seed: 77 + kind }))
      rounds.get(q.imageId).set(q.question, q.answer);
  });
  const examples = scenes.map((s) => {
    const pairs = [...rounds.get(s.id)].map(([instruction, response]) => ({ instruction, response }));
    return { image: s.image, conversation: (rnd) => conversationFromPairs(rnd.shuffle(pairs)) };
  });
  if (replay) examples.push(...(await llavaTrainingData(world, LLAVA_PLAN, 0, true)).stage2);
  console.log(
    `${scenes.length} existence conversations${replay ? ` + ${examples.length - scenes.length} of the card's mixture` : ""}`,
  );
  const cache = featureCache(
    model,
    examples.map((e) => e.image),
  );
  await cache.precompute(examples.map((e) => e.image.key));
  const trainer = new LlavaTrainer(model, { stage: 2 });
  let run;
  try {
    run = await runStage(
      "existence stage",
      trainer,
      examples,
      steps,
      { batchSize: 16, learningRate, seed: 98, log: console.log },
      async (chosen, rnd) =>
        llavaBatch(
          chosen.map((e) => tokenizeConversation(tokenizer, e.conversation(rnd), { imageTokens: model.imageTokensPerImage })),
          tokenizer.padTokenId,
          await cache.features(chosen.map((e) => e.image.key)),
        ),
    );
  } finally {
    trainer.dispose();
    cache.clear();
  }
  const { metrics } = await evaluateLlava(model, tokenizer, world, { sets: ["pope", "vqa"] });
  model.dispose();
  console.log(JSON.stringify({ steps, scenes: count, learningRate, replay, seconds: run.seconds, metrics }));
})();
