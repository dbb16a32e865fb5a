/**
 * Where the storyteller loses an object's shape (docs/lab05-plan.md, "Where grounding stands"). Nearly every object the
 * storyteller names wrongly is a colour of its frame on the wrong shape. This fits probes that read an object's shape
 * (5 classes) and colour (6) from the 3×3 tokens round its centre, at three points of the way into the LLM:
 *   - tower: the frozen tower's patch features (8×8 grid, 3×3 patches side by side: 9 × 128 numbers);
 *   - projected: the storyteller's projector output before pooling (8×8 grid, 3×3 tokens: 9 × 128);
 *   - pooled: what the LLM reads, after the stride-2 pooling (4×4 grid, 3×3 pooled tokens: 9 × 128).
 * Each probe is fitted on the objects of the 300 stored training stories and FRESH stories drawn apart from every
 * training draw (seed 777), and scored on the objects of the 50 test stories: linear (softmax regression) and with one
 * hidden layer of 256 ReLU units (300 full-batch Adam steps each, standardised inputs, seeded). One JSON line per probe.
 * A reader that is told where the object is and sees its tokens in their own slots: the LLM is told neither.
 * CHECKPOINT may also be a plain LLaVA (data/checkpoints/llava): its projector, pooled as the storyteller pools
 * (`withImagePooling(model, 2)`), i.e. where the storyteller's training starts.
 * `node bench/storyteller_shape_probe.js [CHECKPOINT=data/checkpoints/storyteller] [FRESH=1000]` (6–10 minutes on one core).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");
const { SHAPE_NAMES, COLOR_NAMES } = dist("data/vocabulary");
const { patchNeighbourhoods } = dist("models/llava");
const { featureCache } = dist("pretrain/llava");

/** The frozen tower's features of every frame of `examples`, computed once (every probe point reads them). */
async function towerFeatures(model, examples) {
  const frames = examples.flatMap((e) => e.frames);
  const cache = featureCache(model, frames);
  await cache.precompute(frames.map((f) => f.key));
  return cache;
}

/**
 * Rows of the 3×3 tokens round each object's centre (the library's `patchNeighbourhoods`, zero beyond the grid, read at
 * the centre token), with its shape and colour indices.
 */
async function objectRows(model, examples, cache, point) {
  const rows = { x: [], shape: [], color: [] };
  for (let start = 0; start < examples.length; start += 50) {
    const chunk = examples.slice(start, start + 50);
    const features = await cache.features(chunk.flatMap((e) => e.frames.map((f) => f.key))); // [F·b, 64, Dv]
    const windows = tf.tidy(() => {
      const tokens =
        point === "tower"
          ? features
          : point === "projected"
            ? model.projector.apply(patchNeighbourhoods(features, model.config.projectorWindow)) // [F·b, 64, Dt]
            : model.projectFeatures(features); // pooled: [F·b, 16, Dt]
      return patchNeighbourhoods(tokens, 3); // [F·b, N, 9·D]: each token beside its 3×3 neighbours
    });
    features.dispose();
    const [, n, width] = windows.shape;
    const grid = Math.round(Math.sqrt(n));
    const cell = model.config.vision.imageSize / grid;
    const values = await windows.data();
    windows.dispose();
    let image = 0;
    for (const example of chunk)
      for (const frame of example.annotations) {
        for (const object of frame.objects) {
          const cx = Math.min(grid - 1, Math.floor(object.x / cell));
          const cy = Math.min(grid - 1, Math.floor(object.y / cell));
          const at = (image * n + cy * grid + cx) * width;
          rows.x.push(values.slice(at, at + width));
          rows.shape.push(SHAPE_NAMES.indexOf(object.shape));
          rows.color.push(COLOR_NAMES.indexOf(object.color));
        }
        image++;
      }
  }
  return rows;
}

/** Test accuracy of a probe fitted on `train` (hidden 0 = linear). */
async function probeAccuracy(train, test, labels, classes, hidden) {
  const width = train.x[0].length;
  const mean = new Float32Array(width);
  const spread = new Float32Array(width);
  for (const row of train.x) for (let i = 0; i < width; i++) mean[i] += row[i] / train.x.length;
  for (const row of train.x) for (let i = 0; i < width; i++) spread[i] += (row[i] - mean[i]) ** 2 / train.x.length;
  const matrix = (rows) => {
    const out = new Float32Array(rows.length * width);
    rows.forEach((row, r) => {
      for (let i = 0; i < width; i++) out[r * width + i] = (row[i] - mean[i]) / Math.sqrt(spread[i] + 1e-6);
    });
    return tf.tensor2d(out, [rows.length, width]);
  };
  const [xTrain, xTest] = [matrix(train.x), matrix(test.x)];
  const first = hidden ? tf.variable(tf.randomNormal([width, hidden], 0, 1 / Math.sqrt(width), "float32", 1)) : undefined;
  const last = tf.variable(
    hidden ? tf.randomNormal([hidden, classes], 0, 1 / Math.sqrt(hidden), "float32", 2) : tf.zeros([width, classes]),
  );
  const bias = tf.variable(tf.zeros([classes]));
  const logits = (x) => (first ? x.matMul(first).relu() : x).matMul(last).add(bias);
  const target = tf.oneHot(tf.tensor1d(train[labels], "int32"), classes);
  const optimizer = tf.train.adam(hidden ? 0.003 : 0.01);
  for (let step = 0; step < 300; step++)
    optimizer.minimize(() => tf.losses.softmaxCrossEntropy(target, logits(xTrain)).add(last.square().sum().mul(1e-4)));
  const accuracy = async (x, truth) => {
    const predicted = tf.tidy(() => logits(x).argMax(1));
    const got = await predicted.data();
    predicted.dispose();
    return got.filter((p, i) => p === truth[i]).length / truth.length;
  };
  const result = { train: await accuracy(xTrain, train[labels]), test: await accuracy(xTest, test[labels]) };
  tf.dispose([xTrain, xTest, target, last, bias, ...(first ? [first] : [])]);
  optimizer.dispose();
  return result;
}

void (async () => {
  const checkpoint = path.resolve(process.argv[2] ?? path.join(root, "data/checkpoints/storyteller"));
  const freshCount = Number(process.argv[3] ?? 1000);
  await dist("engine/init").initEngine({ backend: "native", verbose: false });
  const S = dist("pretrain/storyteller");
  let model;
  if (S.isStoryteller(checkpoint)) model = S.loadStoryteller(checkpoint).model;
  else {
    const base = dist("pretrain/llava").loadLlava(checkpoint).model;
    model = S.withImagePooling(base, S.STORYTELLER_PLAN.imagePoolStride);
    base.dispose();
  }
  const world = path.join(root, "data/world");
  const train = [...(await S.storedStories(world, "train")), ...(await S.freshStories(freshCount, 777))];
  const test = await S.storedStories(world, "test");
  const [trainCache, testCache] = [await towerFeatures(model, train), await towerFeatures(model, test)];
  for (const point of ["tower", "projected", "pooled"]) {
    const [a, b] = [await objectRows(model, train, trainCache, point), await objectRows(model, test, testCache, point)];
    for (const [labels, classes] of [
      ["shape", SHAPE_NAMES.length],
      ["color", COLOR_NAMES.length],
    ])
      for (const hidden of [0, 256]) {
        const { train: fit, test: held } = await probeAccuracy(a, b, labels, classes, hidden);
        console.log(
          JSON.stringify({
            checkpoint: path.relative(root, checkpoint),
            point,
            target: labels,
            probe: hidden ? `mlp ${hidden}` : "linear",
            train_accuracy: +fit.toFixed(3),
            test_accuracy: +held.toFixed(3),
            chance: +(1 / classes).toFixed(3),
            train_objects: a.x.length,
            test_objects: b.x.length,
          }),
        );
      }
  }
  trainCache.clear();
  testCache.clear();
  model.dispose();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
