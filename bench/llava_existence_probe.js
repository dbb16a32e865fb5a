/**
 * The ceiling of POPE for `llava`'s frozen tower (docs/lab02-plan.md, "POPE: the round order and the existence
 * questions"): can the tower's patch features (what the projector reads) tell which colour–shape pairs a scene holds?
 * A probe shaped like the projector and a generous reader of it: each patch's 3 × 3 neighbourhood (the windowed
 * projector's input, `patchNeighbourhoods`) → a hidden layer → one logit per colour–shape pair, the maximum over the
 * patches as the scene's logit (an object is present when some window sees it). Trained on fresh scenes (drawn like
 * stage 2's, seeded apart from every split and training draw) with the presence of each pair as the target, then asked
 * the eval's own POPE questions on the world's test scenes (`buildPopeQuestions`, 3 per image, seed 0: the same 1,108
 * per kind as `mllm-labs eval`), "yes" when the pair's probability passes 0.5.
 * `node bench/llava_existence_probe.js [TRAIN=16000] [STEPS=4000] [CHECKPOINT=data/checkpoints/llava]`
 * (about 15 minutes on one core).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");

void (async () => {
  const trainCount = Number(process.argv[2] ?? 16000);
  const steps = Number(process.argv[3] ?? 4000);
  const checkpoint = path.resolve(process.argv[4] ?? path.join(root, "data/checkpoints/llava"));
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, featureCache } = dist("pretrain/llava");
  const { patchNeighbourhoods } = dist("models/llava");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { SCENE_COUNT_WEIGHTS } = dist("data/world");
  const { openSplit } = dist("data/loaders");
  const { COLOR_NAMES, SHAPE_NAMES } = dist("data/vocabulary");
  const { buildPopeQuestions, popeMetrics, POPE_NEGATIVES } = dist("metrics/pope");
  const { Random } = dist("util/random");
  const pairs = COLOR_NAMES.flatMap((color) => SHAPE_NAMES.map((shape) => `${color} ${shape}`));
  const pairIndex = new Map(pairs.map((p, k) => [p, k]));
  const presence = (objects) => {
    const row = new Array(pairs.length).fill(0);
    for (const o of objects) row[pairIndex.get(`${o.color} ${o.shape}`)] = 1;
    return row;
  };

  const { model } = loadLlava(checkpoint);
  const random = new Random(994); // apart from the world's splits, the training draws and the other probes
  const train = [];
  for (let k = 0; k < trainCount; k++) {
    const scene = sampleScene(random, { countWeights: SCENE_COUNT_WEIGHTS });
    train.push({ key: `probe/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data, objects: scene.objects });
  }
  const split = openSplit(path.join(root, "data/world"), "scenes", "test");
  const test = split.records.map((r) => ({ key: path.join(split.dir, r.image), id: r.id, objects: r.objects }));
  const cache = featureCache(model, train);
  const featuresOf = async (items) => {
    const chunks = [];
    for (let start = 0; start < items.length; start += 100) {
      const keys = items.slice(start, start + 100).map((i) => i.key);
      await cache.precompute(keys);
      chunks.push(await cache.features(keys)); // [b, Nimg, Dv]
    }
    const all = tf.concat(chunks, 0);
    tf.dispose(chunks);
    return all;
  };
  const trainFeatures = await featuresOf(train);
  const testFeatures = await featuresOf(test);
  cache.clear();
  model.dispose();
  const window = 3;
  const [, patches, width] = trainFeatures.shape;
  const mean = trainFeatures.mean([0, 1]);
  const scale = trainFeatures.sub(mean).square().mean([0, 1]).sqrt().add(1e-6);
  const targets = tf.tensor2d(train.map((i) => presence(i.objects))); // [N, pairs]
  console.log(
    `${checkpoint}: ${trainCount} fresh training scenes, ${test.length} test scenes; ${patches} patches × ${width} features, window ${window}; ${pairs.length} pairs`,
  );

  for (const hidden of [0, 256]) {
    // hidden 0: a linear reader of each window (the linear projector's view); 256: one hidden layer (the MLP's).
    const seeded = new Random(hidden + 1);
    const init = (rows, cols) => tf.variable(tf.randomNormal([rows, cols], 0, 1 / Math.sqrt(rows), "float32", seeded.nextSeed()));
    const inWidth = width * window * window;
    const layers = hidden > 0 ? [init(inWidth, hidden), init(hidden, pairs.length)] : [init(inWidth, pairs.length)];
    // The last bias starts at the log-odds of a pair's presence (about 1 in 12), so that the maximum over 64 windows
    // does not start at "every pair present".
    const biases = layers.map((w, k) => tf.variable(tf.fill([w.shape[1]], k === layers.length - 1 ? -4 : 0)));
    const logitsOf = (features) => {
      const x = patchNeighbourhoods(features.sub(mean).div(scale), window); // [b, Nimg, window²·Dv]
      let h = x.reshape([-1, inWidth]); // every window a row: [b·Nimg, window²·Dv]
      layers.forEach((w, k) => {
        h = tf.matMul(h, w).add(biases[k]);
        if (k < layers.length - 1) h = tf.relu(h);
      });
      return h.reshape([features.shape[0], patches, pairs.length]).max(1); // [b, pairs]: the best window's logit
    };
    const optimizer = tf.train.adam(1e-3);
    const order = new Random(hidden + 7);
    const batch = 64;
    for (let step = 0; step < steps; step++) {
      const rows = Array.from({ length: batch }, () => order.int(0, trainCount));
      const loss = optimizer.minimize(
        () =>
          tf.tidy(() => {
            const index = tf.tensor1d(rows, "int32");
            return tf.losses.sigmoidCrossEntropy(targets.gather(index), logitsOf(trainFeatures.gather(index)));
          }),
        true,
      );
      if ((step + 1) % 1000 === 0) console.log(`  hidden ${hidden}, step ${step + 1}: loss ${(await loss.data())[0].toFixed(4)}`);
      loss.dispose();
    }
    const probabilities = [];
    for (let start = 0; start < test.length; start += 100) {
      const p = tf.tidy(() => tf.sigmoid(logitsOf(testFeatures.slice([start], [Math.min(100, test.length - start)]))));
      probabilities.push(...(await p.array()));
      p.dispose();
    }
    const byId = new Map(test.map((t, k) => [t.id, probabilities[k]]));
    const scenes = test.map((t) => ({ id: t.id, objects: t.objects }));
    const line = POPE_NEGATIVES.map((negatives) => {
      const questions = buildPopeQuestions(scenes, { negatives, perImage: 3, seed: 0 });
      const answers = questions.map((q) => (byId.get(q.imageId)[pairIndex.get(`${q.color} ${q.shape}`)] > 0.5 ? "yes" : "no"));
      const m = popeMetrics(
        answers,
        questions.map((q) => q.answer),
      );
      const [f1, accuracy, precision, recall, yes] = [m.f1, m.accuracy, m.precision, m.recall, m.yesRatio].map((v) =>
        v.toFixed(3),
      );
      return `${negatives} F1 ${f1} accuracy ${accuracy} precision ${precision} recall ${recall} yes-ratio ${yes} (${questions.length})`;
    });
    console.log(`probe, hidden ${hidden || "none (linear)"}: ${line.join("; ")}`);
    tf.dispose([...layers, ...biases]);
    optimizer.dispose();
  }
  tf.dispose([trainFeatures, testFeatures, mean, scale, targets]);
})();
