/**
 * How well can the storyteller's bridge carry the object map when nothing else pulls at it (docs/lab05-plan.md, "The
 * object-map stage")? The projector of lab 02's LLaVA, pooled as the storyteller pools it, is trained with the
 * object-map read-out on the map alone (no LLM), then scored on the 548 objects of the 50 test stories: at each
 * object's cell, is its shape the read-out's best among the five shapes of its colour? (The storyteller's wrong
 * objects are nearly all a right colour on a wrong shape.)
 * Variants:
 *   - average: the storyteller's bridge (each patch's 3×3 neighbourhood through the projector, then the 2×2 average);
 *   - strided: the pooling learned before the nonlinearity (the projector's first layer reads each 2×2 cell's 4×4 patch
 *     neighbourhood, a stride-2 convolution as in Honeybee's C-Abstractor and MobileVLM's LDP), started from lab 02's
 *     projector with the first layer the average of its four windows' weights (equal to the average pool for a linear
 *     projector).
 * Training: 300 stored + 1,000 fresh stories (seed 31), 16 stories (80 frames) a step, Adam at a constant 1e-3.
 * `node bench/storyteller_map_capacity.js [average|strided] [STEPS=1500]` (4–9 minutes on one core). One JSON line.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");
const { SHAPE_NAMES } = dist("data/vocabulary");
const { patchNeighbourhoods, poolImageTokens, LlavaMultiModalProjector } = dist("models/llava");
const { featureCache, loadLlava } = dist("pretrain/llava");
const { ObjectMapHead, objectMapTargets } = dist("pretrain/object_map");
const { presencePairIndex } = dist("pretrain/llava_presence");
const { Random } = dist("util/random");

/** features [Bimg, g·g, D] → [Bimg, (g/2)², 16·D]: each 2×2 cell's 4×4 patch neighbourhood (zeros beyond the grid). */
function cellNeighbourhoods(features) {
  const [B, N, D] = features.shape;
  const grid = Math.round(Math.sqrt(N));
  const cells = grid / 2;
  return tf.tidy(() => {
    // one zero row and column before the grid, two after: offset u of cell i is padded row 2i + u, u = 0…3
    const padded = features.reshape([B, grid, grid, D]).pad([
      [0, 0],
      [1, 2],
      [1, 2],
      [0, 0],
    ]);
    const parts = [];
    for (let u = 0; u < 4; u++)
      for (let v = 0; v < 4; v++)
        parts.push(
          padded
            .slice([0, u, v, 0], [B, grid, grid, D])
            .reshape([B, cells, 2, cells, 2, D]) // every second row and column: the cells' offset (u, v)
            .slice([0, 0, 0, 0, 0, 0], [B, cells, 1, cells, 1, D])
            .reshape([B, cells, cells, D]),
        );
    return tf.concat(parts, 3).reshape([B, cells * cells, 16 * D]);
  });
}

/** The strided projector, started from a 3×3-window projector: its first layer the mean of the four windows' weights. */
async function stridedFrom(projector, D, Dt) {
  const strided = new LlavaMultiModalProjector(16 * D, Dt, "gelu", true, 5, "mlp2x_gelu");
  const window3 = await projector.linear1.weight.data(); // [H, 9·D]
  const hidden = projector.linear1.weight.shape[0];
  const window4 = new Float32Array(hidden * 16 * D);
  for (let h = 0; h < hidden; h++)
    for (let a = 0; a < 2; a++)
      for (let b = 0; b < 2; b++)
        // the cell's patch (a, b) reads offsets (a + dy, b + dx) of the 4×4 window
        for (let dy = 0; dy < 3; dy++)
          for (let dx = 0; dx < 3; dx++)
            for (let d = 0; d < D; d++)
              window4[h * 16 * D + ((a + dy) * 4 + b + dx) * D + d] += 0.25 * window3[h * 9 * D + (dy * 3 + dx) * D + d];
  strided.linear1.weight.assign(tf.tensor2d(window4, [hidden, 16 * D]));
  strided.linear1.bias.assign(projector.linear1.bias);
  strided.linear2.weight.assign(projector.linear2.weight);
  strided.linear2.bias.assign(projector.linear2.bias);
  return strided;
}

void (async () => {
  const variant = process.argv[2] ?? "average";
  const steps = Number(process.argv[3] ?? 1500);
  if (!["average", "strided"].includes(variant))
    throw new Error(`variant must be average or strided, got ${JSON.stringify(variant)}`);
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`STEPS must be a positive integer, got ${process.argv[3]}`);
  await dist("engine/init").initEngine({ backend: "native", verbose: false });
  const S = dist("pretrain/storyteller");
  const base = loadLlava(path.join(root, "data/checkpoints/llava")).model;
  const model = S.withImagePooling(base, 2);
  base.dispose();
  const [D, Dt] = [model.config.vision.hiddenSize, model.config.text.hiddenSize];
  const world = path.join(root, "data/world");
  const train = [...(await S.storedStories(world, "train")), ...(await S.freshStories(1000, 31))];
  const test = await S.storedStories(world, "test");
  const cache = featureCache(
    model,
    [...train, ...test].flatMap((s) => s.frames),
  );
  await cache.precompute([...train, ...test].flatMap((s) => s.frames.map((f) => f.key)));
  const projector = variant === "average" ? model.projector : await stridedFrom(model.projector, D, Dt);
  const project = (features) =>
    variant === "average"
      ? poolImageTokens(projector.apply(patchNeighbourhoods(features, model.config.projectorWindow)), 2)
      : projector.apply(cellNeighbourhoods(features)); // [Bimg, 16, Dt] either way
  const head = new ObjectMapHead(Dt, 13);
  const variables = [...projector.namedParameters().map(([, v]) => v), ...head.variables];
  for (const v of variables) v.trainable = true;
  const optimizer = tf.train.adam(1e-3);
  const random = new Random(3);
  const started = Date.now();
  let last = NaN;
  for (let step = 0; step < steps; step++) {
    const batch = Array.from({ length: 16 }, () => train[Math.floor(random.next() * train.length)]);
    const features = await cache.features(batch.flatMap((s) => s.frames.map((f) => f.key)));
    const targets = objectMapTargets(
      batch.flatMap((s) => s.annotations.map((a) => a.objects)),
      4,
      64,
    );
    const loss = optimizer.minimize(() => head.loss(project(features), targets), true, variables);
    if (step === steps - 1) last = (await loss.data())[0];
    tf.dispose([features, targets, loss]);
  }
  let right = 0;
  let objects = 0;
  for (const story of test) {
    const features = await cache.features(story.frames.map((f) => f.key));
    const logits = tf.tidy(() => head.logits(project(features)));
    const rows = await logits.array(); // [F][16][pairs]
    tf.dispose([features, logits]);
    story.annotations.forEach((frame, image) =>
      frame.objects.forEach((object) => {
        const row = rows[image][Math.min(3, Math.floor(object.y / 16)) * 4 + Math.min(3, Math.floor(object.x / 16))];
        const best = SHAPE_NAMES.reduce((a, b) =>
          row[presencePairIndex({ color: object.color, shape: b })] > row[presencePairIndex({ color: object.color, shape: a })]
            ? b
            : a,
        );
        right += best === object.shape;
        objects++;
      }),
    );
  }
  console.log(
    JSON.stringify({
      variant,
      steps,
      final_map_loss: +last.toFixed(4),
      shape_given_colour: +(right / objects).toFixed(3),
      chance: +(1 / SHAPE_NAMES.length).toFixed(3),
      test_objects: objects,
      seconds: Math.round((Date.now() - started) / 1000),
    }),
  );
  cache.clear();
  model.dispose();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
