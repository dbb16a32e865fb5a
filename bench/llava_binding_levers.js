/**
 * Levers against POPE's binding errors, each on the same short tune (docs/lab02-plan.md, "Four levers against
 * binding, on one short tune" and "The tower tuned too, and llava asked question-first"): the committed llava tuned
 * (projector + LLM; the tower frozen but in `tower-tuned`) on single existence questions about fresh scenes, drawn as
 * llava-robust draws them (`robustExistencePairs` with LLAVA_ROBUST_PLAN: each present pair matched by
 * a binding, adversarial or random absent one), one question per row picked anew at each draw, no replay; then the
 * eval's own POPE questions on the world's 300 test scenes (`buildPopeQuestions`, three present pairs per image, seed
 * 0: the 1,108 per kind of `mllm-labs eval`), asked greedily as `evaluateLlava` asks them, in the variant's format.
 * VARIANT:
 * - `image-first`: LLaVA's format, "<image>\n{question}" (the control);
 * - `question-first`: "{question}\n<image>", so that every image token can see the question (InstructBLIP's
 *   instruction-aware reading): a binding question becomes a test each image token can make on its own;
 * - `question-both`: "{question}\n<image>\n{question}": the control's reading kept, the instruction-aware one added;
 * - `expanded`: LLaMA Pro's block expansion (Wu et al., ACL 2024): after each of the LLM's blocks a copy of it whose
 *   o_proj and down_proj are zero (so the model starts as llava, to the last digit), twice the depth, then tuned in
 *   full as the control is;
 * - `object-map`: the control's format with the object-map objective beside the language loss (`object_map.ts`, weight
 *   MAP_WEIGHT): each image token asked, through a linear read-out dropped afterwards, which colour–shape pairs have
 *   their centre in its cell, so that a binding pair is one direction of the token a question's attention can match.
 * - `tower-tuned`: the control with the vision tower tuned too (frozen in LLaVA's two stages; unfrozen in later recipes
 *   such as LLaVA-OneVision's and Qwen-VL's), its step size TOWER_LR_SCALE times the projector's and LLM's (a second
 *   AdamW over the same gradients): the features themselves may learn to bind an object's colour to its shape, which a
 *   contrastive tower trained on captions need not do (Yuksekgonul et al., ICLR 2023, "bag-of-words" behaviour).
 * The llava tuned is the committed one, or the folder in the environment's LLAVA_DIR (a llava trained another way:
 * `bench/llava_question_first.js`).
 * A diagnostic: it writes nothing and prints one JSON line (POPE F1, accuracy and yes-ratio per kind, "no" to the
 * binding pairs per kind, the last loss, the seconds).
 * `node bench/llava_binding_levers.js [VARIANT=image-first] [STEPS=1000] [SCENES=6000] [LR=5e-4] [BATCH=32] [MAP_WEIGHT=1]
 * [TOWER_LR_SCALE=1]`
 * (1,000 steps of 32: about 9 minutes on one thread, 15 for `expanded`, then 4 of questions).
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

const VARIANTS = ["image-first", "question-first", "question-both", "expanded", "object-map", "tower-tuned"];

/** The first user turn of a variant's format. */
function userTurn(variant, question) {
  if (variant === "question-first") return `${question}\n<image>`;
  if (variant === "question-both") return `${question}\n<image>\n${question}`;
  return `<image>\n${question}`;
}

/**
 * LLaMA Pro's block expansion of a loaded llava: block k of the result is block k / 2 of the source, the odd ones with
 * their o_proj and down_proj zeroed (each adds nothing through the residual until tuned). Checks that the result has
 * twice the blocks and gives the source's logits, then frees the source.
 */
async function expandBlocks(model) {
  const { LlavaForConditionalGeneration } = dist("models/llava");
  const layers = model.config.text.numLayers;
  if (!(Number.isInteger(layers) && layers > 0)) throw new Error(`block expansion: the LLM's numLayers is ${layers}`);
  const expanded = new LlavaForConditionalGeneration({
    ...model.config,
    text: { ...model.config.text, numLayers: 2 * layers },
  });
  if (expanded.languageModel.config.numLayers !== 2 * layers)
    throw new Error(`block expansion: built ${expanded.languageModel.config.numLayers} blocks, expected ${2 * layers}`);
  const source = model.stateDict();
  expanded.loadParameters((name) => {
    const block = name.match(/^(language_model\.model\.layers\.)(\d+)(\..*)$/);
    if (!block) return source[name] && tf.clone(source[name]);
    const from = source[`${block[1]}${Math.floor(Number(block[2]) / 2)}${block[3]}`];
    if (!from) return undefined;
    const zeroed = Number(block[2]) % 2 === 1 && /(o_proj|down_proj)\.weight$/.test(block[3]);
    return zeroed ? tf.zerosLike(from) : tf.clone(from);
  }, "block expansion");
  const inputIds = tf.tensor2d([[5, 6, 7, 8, 9, 10, 11, 12]], [1, 8], "int32");
  const difference = tf.tidy(() =>
    model.languageModel.forward({ inputIds }).logits.sub(expanded.languageModel.forward({ inputIds }).logits).abs().max(),
  );
  const [largest] = await difference.data();
  tf.dispose([inputIds, difference]);
  if (largest !== 0) throw new Error(`block expansion: the expanded model's logits differ from the source's by ${largest}`);
  model.dispose();
  return expanded;
}

void (async () => {
  const [variant, steps, count, learningRate, batchSize, mapWeight, towerScale] = [
    process.argv[2] ?? "image-first",
    Number(process.argv[3] ?? 1000),
    Number(process.argv[4] ?? 6000),
    Number(process.argv[5] ?? 5e-4),
    Number(process.argv[6] ?? 32),
    Number(process.argv[7] ?? 1),
    Number(process.argv[8] ?? 1),
  ];
  if (!VARIANTS.includes(variant))
    throw new Error(`VARIANT must be one of ${VARIANTS.join(", ")}, got ${JSON.stringify(variant)}`);
  for (const [name, value] of Object.entries({ steps, count, batchSize }))
    if (!(Number.isInteger(value) && value > 0)) throw new Error(`${name} must be a positive integer, got ${value}`);
  if (!(learningRate > 0)) throw new Error(`LR must be a positive number, got ${process.argv[5]}`);
  if (!(mapWeight > 0)) throw new Error(`MAP_WEIGHT must be a positive number, got ${process.argv[7]}`);
  if (!(towerScale > 0)) throw new Error(`TOWER_LR_SCALE must be a positive number, got ${process.argv[8]}`);
  const towerTuned = variant === "tower-tuned";
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, featureCache, runStage, SCENE_CANVAS } = dist("pretrain/llava");
  const { ObjectMapHead, objectMapTargets, tokenGridSide } = dist("pretrain/object_map");
  const { robustExistencePairs, LLAVA_ROBUST_PLAN } = dist("pretrain/llava_robust");
  const { LlavaTrainer, llavaBatch, llavaLoss } = dist("pretrain/llava_training");
  const { AdamW } = dist("train/adamw");
  const { valueAndGradients } = dist("engine/backprop");
  const { toChannelsFirst } = dist("data/loaders");
  const { chatBatch } = dist("pipelines/llava_chat");
  const { tokenizeConversation } = dist("data/conversation");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { SCENE_COUNT_WEIGHTS } = dist("data/world");
  const { openSplit } = dist("data/loaders");
  const { buildPopeQuestions, parseYesNo, popeMetrics, POPE_NEGATIVES } = dist("metrics/pope");
  const { Random } = dist("util/random");
  const loaded = loadLlava(process.env.LLAVA_DIR ?? path.join(root, "data/checkpoints/llava"));
  const model = variant === "expanded" ? await expandBlocks(loaded.model) : loaded.model;
  const { tokenizer } = loaded;
  const sceneRandom = new Random(4321); // apart from the world's splits, llava's and llava-robust's draws
  const pairRandom = new Random(4322);
  const examples = [];
  for (let k = 0; k < count; k++) {
    const scene = sampleScene(sceneRandom, { countWeights: SCENE_COUNT_WEIGHTS });
    const rounds = robustExistencePairs(scene.objects, LLAVA_ROBUST_PLAN, pairRandom);
    examples.push({ image: { key: `levers/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data }, rounds, objects: scene.objects });
  }
  // The tower-tuned variant reads pixels at every step (its features change); the others cache the frozen tower's once.
  const cache = featureCache(model, towerTuned ? [] : examples.map((e) => e.image));
  if (!towerTuned) await cache.precompute(examples.map((e) => e.image.key));
  const size = model.config.vision.imageSize;
  /** [n, 3, S, S] CLIP-normalised pixels of the chosen examples' scenes. */
  const pixelsOf = (chosen) => {
    const out = new Float32Array(chosen.length * 3 * size * size);
    chosen.forEach((e, k) => toChannelsFirst({ data: e.image.rgb, width: size }, 0, size, "clip", out, k * 3 * size * size));
    return tf.tensor4d(out, [chosen.length, 3, size, size]);
  };
  const objectMap =
    variant === "object-map" ? { weight: mapWeight, head: new ObjectMapHead(model.config.text.hiddenSize, 93) } : undefined;
  const trainer = new LlavaTrainer(model, { stage: 2, ...(objectMap ? { objectMap } : {}) });
  let towerOptimizer;
  if (towerTuned) {
    // One backward pass for all; the projector and LLM step with the trainer's AdamW, the tower with its own at
    // TOWER_LR_SCALE times the scheduled rate. The batch carries placeholder features (llavaBatch checks their count)
    // that the step replaces with the tower's output on the batch's pixels, inside the gradient.
    model.visionTower.setTrainable(true);
    // The selected hidden state comes before the tower's post-layernorm, which gets no gradient and stays as it is.
    const towerVariables = model.visionTower
      .namedParameters()
      .filter(([name]) => !name.includes("post_layernorm"))
      .map(([, variable]) => variable);
    const mainVariables = trainer.variables.filter((v) => !towerVariables.includes(v));
    towerOptimizer = new AdamW({ learningRate: 0, weightDecay: 0 });
    trainer.step = (batch) => {
      const { pixels } = batch; // the placeholder features stay on the batch, for the caller's disposeBatch
      const { value, grads } = valueAndGradients(
        () => llavaLoss(model, { ...batch, visionFeatures: model.visionFeatures(pixels) }),
        [...mainVariables, ...towerVariables],
      );
      const main = new Map();
      const tower = new Map();
      mainVariables.forEach((v, i) => grads[i] && main.set(v, grads[i]));
      towerVariables.forEach((v, i) => grads[mainVariables.length + i] && tower.set(v, grads[mainVariables.length + i]));
      if (tower.size !== towerVariables.length)
        throw new Error(`tower-tuned: ${tower.size} of ${towerVariables.length} tower variables got a gradient`);
      trainer.optimizer.applyGradients(main);
      towerOptimizer.learningRate = trainer.learningRate * towerScale;
      towerOptimizer.applyGradients(tower);
      tf.dispose([...grads.filter(Boolean), pixels]);
      return value;
    };
  }
  let run;
  try {
    run = await runStage(
      `levers ${variant}`,
      trainer,
      examples,
      steps,
      { batchSize, learningRate, seed: 98, log: console.log },
      async (chosen, random) => ({
        ...(objectMap
          ? {
              objectMaps: objectMapTargets(
                chosen.map((e) => e.objects),
                tokenGridSide(model.imageTokensPerImage),
                SCENE_CANVAS,
              ),
            }
          : {}),
        ...(towerTuned ? { pixels: pixelsOf(chosen) } : {}),
        ...llavaBatch(
          chosen.map((e) => {
            const round = e.rounds[Math.floor(random.next() * e.rounds.length)];
            const turns = [
              { from: "human", value: userTurn(variant, round.instruction) },
              { from: "gpt", value: round.response },
            ];
            return tokenizeConversation(tokenizer, turns, { imageTokens: model.imageTokensPerImage });
          }),
          tokenizer.padTokenId,
          towerTuned
            ? tf.zeros([
                chosen.length,
                (size / model.config.vision.patchSize) ** 2,
                model.config.vision.hiddenSize * model.config.visionFeatureLayers.length,
              ])
            : await cache.features(chosen.map((e) => e.image.key)),
        ),
      }),
    );
  } finally {
    trainer.dispose();
    towerOptimizer?.dispose();
    objectMap?.head.dispose();
    cache.clear();
  }

  // POPE as the eval asks it, in the variant's format.
  const split = openSplit(path.join(root, "data/world"), "scenes", "test");
  const byId = new Map(split.records.map((r) => [r.id, r]));
  const tests = featureCache(
    model,
    split.records.map((r) => ({ key: path.join(split.dir, r.image) })),
  );
  const out = {
    variant,
    steps,
    scenes: count,
    learningRate,
    batchSize,
    ...(objectMap ? { mapWeight } : {}),
    ...(towerTuned ? { towerScale } : {}),
  };
  out.train_seconds = Math.round(run.seconds);
  out.last_loss = run.curve[run.curve.length - 1];
  try {
    for (const negatives of POPE_NEGATIVES) {
      const questions = buildPopeQuestions(split.records, { negatives, perImage: 3, seed: 0 });
      const said = [];
      for (let start = 0; start < questions.length; start += 64) {
        const chunk = questions.slice(start, start + 64);
        const features = await tests.features(chunk.map((q) => path.join(split.dir, byId.get(q.imageId).image)));
        try {
          const replies = await chatBatch(
            model,
            tokenizer,
            chunk.map((q) => [{ role: "user", content: userTurn(variant, q.question) }]),
            { visionFeatures: features },
            { maxNewTokens: 6 }, // evaluateLlava's short answers
          );
          said.push(...replies.map((r) => r.text.trim()));
        } finally {
          features.dispose();
        }
      }
      const m = popeMetrics(
        said,
        questions.map((q) => q.answer),
      );
      const binding = questions
        .map((q, k) => ({ q, k }))
        .filter(({ q }) => {
          const objects = byId.get(q.imageId).objects;
          return q.answer === "no" && objects.some((o) => o.color === q.color) && objects.some((o) => o.shape === q.shape);
        });
      Object.assign(out, {
        [`pope_${negatives}_f1`]: +m.f1.toFixed(3),
        [`pope_${negatives}_accuracy`]: +m.accuracy.toFixed(3),
        [`pope_${negatives}_yes_ratio`]: +m.yesRatio.toFixed(3),
        [`binding_no_${negatives}`]: `${(binding.filter(({ k }) => parseYesNo(said[k]) === "no").length / binding.length).toFixed(3)} of ${binding.length}`,
      });
    }
  } finally {
    tests.clear();
    model.dispose();
  }
  console.log(JSON.stringify(out));
})();
