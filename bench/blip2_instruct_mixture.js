/**
 * What lab 01's InstructBLIP path learns from which questions (docs/lab01-plan.md, "Shape and the question mixture"):
 * instruction-tunes a BLIP-2 bridge's instruction-aware path with `trainStage2` (questions three steps in four,
 * captions in the fourth, as the card's run does) on the train split's questions of the chosen types only, then
 * answers the first test scenes' questions of those types, with shape accuracy split by the scene's number of objects.
 * Accuracy here is the greedy answer's first word equal to the question's answer (exact match), not the card's VQA soft
 * accuracy over ten annotators' answers (`vqaScores`), so the bench compares runs with each other, not with the card.
 *
 *   node bench/blip2_instruct_mixture.js [BRIDGE] [TYPES] [STEPS] [LR] [TRAIN_SCENES]
 *
 * BRIDGE: `committed` (data/checkpoints/blip2, its InstructBLIP path tuned further) or `fresh` / `fresh3` (a new bridge,
 * Q-Former window 1 or 3, no stage 1 or 2: the instruct path from its initialisation); default `fresh`.
 * TYPES: comma-separated question types (color, shape, count, exist, relation); default `shape,color`. Phases are
 * separated by `/`: `shape/shape,color` tunes STEPS steps on shape questions, then STEPS more on shape and colour
 * (measured after each phase, on the last phase's types).
 * STEPS (default 600), LR (peak, default 2e-3), TRAIN_SCENES (the first N of the train split, default 1500).
 * Batch 24, seed 5; the 150 first test scenes. One JSON line before and one after training; about 5 minutes
 * per 600 steps on one core (`MLLM_THREADS=1`). Reads data/world and data/checkpoints/{blip2,vision,language}.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const { loadBlip2Pipeline, splitFeatures, trainStage2, blip2BridgeConfig, questionsOfTypes } = dist("pretrain/blip2");
const { Blip2ForPretraining } = dist("models/blip2_pretraining");
const { Blip2Pipeline } = dist("pipelines/blip2");
const { QUESTION_TYPES } = dist("data/vqa");

const [bridgeName = "fresh", typeList = "shape,color", stepsArg = "600", lrArg = "2e-3", scenesArg = "1500"] =
  process.argv.slice(2);
const phases = typeList.split("/").map((list) => new Set(list.split(",")));
const types = phases[phases.length - 1];
for (const type of phases.flatMap((phase) => [...phase]))
  if (!QUESTION_TYPES.includes(type))
    throw new Error(`blip2_instruct_mixture: unknown question type ${JSON.stringify(type)} (one of ${QUESTION_TYPES})`);
if (!["committed", "fresh", "fresh1", "fresh3"].includes(bridgeName))
  throw new Error(`blip2_instruct_mixture: BRIDGE must be committed, fresh or fresh3, got ${JSON.stringify(bridgeName)}`);
const steps = Number(stepsArg);
const learningRate = Number(lrArg);
const trainScenes = Number(scenesArg);
if (!(Number.isInteger(steps) && steps > 0 && learningRate > 0 && Number.isInteger(trainScenes) && trainScenes > 0))
  throw new Error(`blip2_instruct_mixture: STEPS, LR, TRAIN_SCENES must be positive, got ${stepsArg} ${lrArg} ${scenesArg}`);

void (async () => {
  await dist("engine/init").initEngine({ backend: process.env.MLLM_BACKEND ?? "native", verbose: false });
  const world = path.join(root, "data/world");
  let pipeline = loadBlip2Pipeline(path.join(root, "data/checkpoints/blip2"));
  if (bridgeName !== "committed") {
    const window = bridgeName === "fresh3" ? 3 : 1;
    const config = blip2BridgeConfig(
      pipeline.tokenizer.vocabSize,
      pipeline.vision.config.hiddenSize,
      pipeline.language.config.hiddenSize,
      0,
      window,
    );
    pipeline.bridge.dispose();
    pipeline = new Blip2Pipeline(pipeline.vision, new Blip2ForPretraining(config), pipeline.language, pipeline.tokenizer);
  }
  const train = await splitFeatures(pipeline.vision, world, "train", trainScenes);
  const testScenes = 150;
  const test = await splitFeatures(pipeline.vision, world, "test", testScenes);
  const objects = fs
    .readFileSync(path.join(world, "scenes/test.jsonl"), "utf8")
    .trim()
    .split("\n")
    .slice(0, testScenes)
    .map((line) => JSON.parse(line).objects.length);
  const questions = test.vqa.flatMap((qs, image) => qs.map((q) => ({ ...q, image }))).filter((q) => types.has(q.type));
  const measure = async (when) => {
    const images = tf.tidy(() =>
      tf.gather(
        test.features,
        tf.tensor1d(
          questions.map((q) => q.image),
          "int32",
        ),
      ),
    );
    const answers = await pipeline.answer(
      images,
      questions.map((q) => q.question),
      { instructionAware: true },
    );
    images.dispose();
    const tally = (key) => {
      const counts = {};
      questions.forEach((q, k) => {
        const name = key(q);
        if (name === undefined) return;
        const c = (counts[name] ??= { correct: 0, questions: 0 });
        c.questions++;
        if (answers[k] === q.answer) c.correct++;
      });
      return Object.fromEntries(
        Object.entries(counts).map(([name, c]) => [
          name,
          { accuracy: Number((c.correct / c.questions).toFixed(3)), questions: c.questions },
        ]),
      );
    };
    console.log(
      JSON.stringify({
        when,
        bridge: bridgeName,
        types: [...types],
        steps,
        learning_rate: learningRate,
        phases: typeList,
        train_scenes: trainScenes,
        accuracy: tally((q) => q.type),
        shape_by_objects: tally((q) => (q.type === "shape" ? String(objects[q.image]) : undefined)),
      }),
    );
  };
  await measure("before");
  for (const [phase, kinds] of phases.entries()) {
    const data = questionsOfTypes(train, [...kinds]); // what pretrainBlip2's instruct phases train on
    const result = await trainStage2(pipeline, data, {
      steps,
      batchSize: 24,
      learningRate,
      seed: 5 + phase,
      instructionAware: true,
      reports: 10,
      onProgress: (p) => console.error(`step ${p.step}/${p.steps} lm ${p.losses.lm} (${p.seconds.toFixed(0)} s)`),
    });
    data.features.dispose();
    console.error(`phase ${phase + 1} (${[...kinds]}) trained in ${result.seconds.toFixed(0)} s`);
    await measure(phase === phases.length - 1 ? "after" : `after phase ${phase + 1}`);
  }
  tf.dispose([train.features, test.features]);
  pipeline.dispose();
})();
