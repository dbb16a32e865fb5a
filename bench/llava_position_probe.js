/**
 * How precisely the frozen vision tower places an object (docs/lab02-plan.md, "The sentiment adapter", code): lab 02's
 * code target asks for drawing programs that render to the same pixels, so every object at its exact integer centre.
 * This fits a ridge regression from all 64 patch features of `llava`'s tower (layer −2, what the projector reads:
 * 64 × 128 numbers) to a lone object's centre on fresh one-object scenes and prints, for the held-out ones, the mean
 * error on the worse axis and the share within 0.5, 1, 1.5 and 3 px on both axes. A linear reader that sees every
 * patch in its own slot: the LLM's attention reads less directly, so this is generous to it.
 * `node bench/llava_position_probe.js [TRAIN=2500] [TEST=500]` (about 2 minutes on one core).
 * Its 5 px are this reader's, not the tower's: `bench/llava_position_detector_probe.js` reads the exact integer centre
 * of 0.87 of the objects from the same features with a detector head on each token's neighbourhood.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");

void (async () => {
  const [trainCount, testCount] = [Number(process.argv[2] ?? 2500), Number(process.argv[3] ?? 500)];
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, featureCache } = dist("pretrain/llava");
  const { sampleScene, sceneSvg, svgToRgb } = dist("data/scene");
  const { Random } = dist("util/random");
  const { model } = loadLlava(path.join(root, "data/checkpoints/llava"));
  const random = new Random(991); // apart from the world's splits and every training draw
  const items = [];
  for (let k = 0; k < trainCount + testCount; k++) {
    const scene = sampleScene(random, { maxObjects: 1 });
    items.push({ key: `probe/${k}`, rgb: (await svgToRgb(sceneSvg(scene))).data, object: scene.objects[0] });
  }
  const cache = featureCache(model, items);
  await cache.precompute(items.map((i) => i.key));
  const rows = [];
  for (let start = 0; start < items.length; start += 100) {
    const features = await cache.features(items.slice(start, start + 100).map((i) => i.key)); // [b, Nimg, Dv]
    const [b, n, d] = features.shape;
    const values = await features.data();
    features.dispose();
    for (let i = 0; i < b; i++) rows.push(Array.from(values.subarray(i * n * d, (i + 1) * n * d))); // slots kept apart
  }
  cache.clear();
  model.dispose();
  const train = tf.tensor2d(rows.slice(0, trainCount));
  const test = tf.tensor2d(rows.slice(trainCount));
  const mean = train.mean(0);
  const scale = train.sub(mean).square().mean(0).sqrt().add(1e-6);
  const [A, B] = [train.sub(mean).div(scale), test.sub(mean).div(scale)];
  const targets = tf.tensor2d(items.slice(0, trainCount).map((i) => [i.object.x, i.object.y]));
  const targetMean = targets.mean(0);
  const kernel = tf.matMul(A, A, false, true); // [N, N]: the dual form, as features (8,192) outnumber scenes
  console.log(`${trainCount} training scenes, ${testCount} held out; ${rows[0].length} features each`);
  for (const lambda of [100, 1000]) {
    // (K + λI) α = Y − ȳ by conjugate gradients (both columns at once).
    const alpha = tf.tidy(() => {
      const system = kernel.add(tf.eye(trainCount).mul(lambda));
      let x = tf.zeros([trainCount, 2]);
      let residual = targets.sub(targetMean);
      let direction = residual;
      let norm = residual.square().sum(0);
      for (let it = 0; it < 300; it++) {
        const product = tf.matMul(system, direction);
        const step = norm.div(direction.mul(product).sum(0));
        x = x.add(direction.mul(step));
        residual = residual.sub(product.mul(step));
        const next = residual.square().sum(0);
        direction = residual.add(direction.mul(next.div(norm)));
        norm = next;
      }
      return x;
    });
    const predicted = await tf.tidy(() => tf.matMul(tf.matMul(B, A, false, true), alpha).add(targetMean)).array();
    alpha.dispose();
    const errors = items
      .slice(trainCount)
      .map((i, k) => Math.max(Math.abs(predicted[k][0] - i.object.x), Math.abs(predicted[k][1] - i.object.y)));
    const within = (px) => (errors.filter((e) => e <= px).length / errors.length).toFixed(3);
    console.log(
      `ridge λ ${lambda}: mean error ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(2)} px on the worse axis; within 0.5 px ${within(0.5)}, 1 px ${within(1)}, 1.5 px ${within(1.5)}, 3 px ${within(3)}`,
    );
  }
  tf.dispose([train, test, mean, scale, A, B, targets, targetMean, kernel]);
})();
