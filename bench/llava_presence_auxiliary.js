/**
 * The presence objective as an auxiliary loss beside stage 2's (docs/lab02-plan.md, "Where this leaves POPE"): the
 * card's plan, with every stage-2 step's loss plus WEIGHT × the presence stage's multiple-instance loss
 * (`presenceLogits`: the maximum over image tokens of a linear head on the projector's output) on the batch's scene
 * images (the domain images masked out), the head trained with the rest and dropped at the end. A diagnostic, wired by
 * wrapping `LlavaTrainer.step` and `VisionFeatureCache.features` (to learn the batch's image keys) rather than as a plan
 * field: it writes nothing and prints the run's train seconds and full-test-set metrics as one JSON line.
 * `node bench/llava_presence_auxiliary.js [WEIGHT=1]` (about 25 minutes on one thread).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");
void (async () => {
  await dist("engine/init").initEngine({ backend: "native" });
  const llava = dist("pretrain/llava");
  const training = dist("pretrain/llava_training");
  const { presenceLogits, presenceTargets, PRESENCE_PAIRS } = dist("pretrain/llava_presence");
  const { Random } = dist("util/random");
  const world = path.join(root, "data/world");
  const plan = { ...llava.LLAVA_PLAN };
  const weight = Number(process.argv[2] ?? 1);
  // key → objects of every training scene (the same deterministic data pretrainLlava draws)
  const data = await llava.llavaTrainingData(world, plan, 0, false);
  const objectsOf = new Map(data.scenes.map((s) => [s.image.key, s.objects]));
  console.log(`aux weight ${weight}; ${objectsOf.size} scenes with objects`);
  let lastKeys = [];
  const features = training.VisionFeatureCache.prototype.features;
  training.VisionFeatureCache.prototype.features = function (keys) {
    lastKeys = keys;
    return features.call(this, keys);
  };
  let head;
  const step = training.LlavaTrainer.prototype.step;
  training.LlavaTrainer.prototype.step = function (batch) {
    if (this.stage !== 2 || !batch.visionFeatures) return step.call(this, batch);
    const width = this.model.config.text.hiddenSize;
    if (!head) {
      const r = new Random(77);
      head = tf.tidy(() => ({
        weight: tf.variable(tf.randomNormal([width, PRESENCE_PAIRS.length], 0, 1 / Math.sqrt(width), "float32", r.nextSeed())),
        bias: tf.variable(tf.fill([PRESENCE_PAIRS.length], -4)),
      }));
    }
    const rows = lastKeys.map((k) => objectsOf.get(k));
    const targets = tf.tensor2d(rows.map((o) => (o ? presenceTargets(o) : new Array(PRESENCE_PAIRS.length).fill(0))));
    const mask = tf.tensor2d(rows.map((o) => new Array(PRESENCE_PAIRS.length).fill(o ? 1 : 0)));
    const count = rows.filter(Boolean).length;
    try {
      return this.optimizer.minimize(
        () =>
          tf.tidy(() => {
            const main = training.llavaLoss(this.model, batch, this.lossWeighting);
            if (count === 0) return main;
            const aux = tf.losses.sigmoidCrossEntropy(targets, presenceLogits(this.model, batch.visionFeatures, head), mask);
            return main.add(aux.mul(weight));
          }),
        [...this.variables, head.weight, head.bias],
      );
    } finally {
      tf.dispose([targets, mask]);
    }
  };
  const { card } = await llava.pretrainLlava(
    { world, out: path.join(root, "data/checkpoints/llava-presence-auxiliary"), dryRun: true },
    plan,
  );
  console.log(JSON.stringify({ train_seconds: card.train_seconds, metrics: card.metrics }));
})();
