/**
 * Issue 16's VQA and POPE targets on worlds generated with other seeds (docs/lab02-plan.md, "Adopted"): `llava` and its
 * blind twin answer the scenes set of each world given, with the majority answer beside them, and one JSON line per
 * world gives colour, shape and existence accuracy and the three POPE F1s (POPE: Li et al., "Evaluating Object
 * Hallucination in Large Vision-Language Models", 2023; VQA soft accuracy: Antol et al., "VQA", 2015). It reads the
 * built library (`npm run build` first).
 * `npm run data -- --seed 7 --sets scenes --out /tmp/world7`, then `node bench/llava_other_seeds.js /tmp/world7 …`
 * (about 2 minutes per world on one core).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

void (async () => {
  const worlds = process.argv.slice(2);
  if (!worlds.length)
    throw new Error(
      "usage: node bench/llava_other_seeds.js WORLD_DIR [WORLD_DIR …] (worlds made by npm run data -- --seed N --sets scenes --out DIR)",
    );
  await dist("engine/init").initEngine({ backend: "native" });
  const { loadLlava, evaluateLlava } = dist("pretrain/llava");
  const llava = loadLlava(path.join(root, "data/checkpoints/llava"));
  const blind = loadLlava(path.join(root, "data/checkpoints/llava-blind"));
  const keys = [
    "vqa_color_accuracy",
    "vqa_shape_accuracy",
    "vqa_exist_accuracy",
    "pope_random_f1",
    "pope_popular_f1",
    "pope_adversarial_f1",
  ];
  const row = (metrics) => Object.fromEntries(keys.map((key) => [key, Number((metrics?.[key] ?? NaN).toFixed(3))]));
  try {
    for (const world of worlds) {
      const { metrics, baselines } = await evaluateLlava(llava.model, llava.tokenizer, world, {
        sets: ["vqa", "pope"],
        blindModel: blind,
      });
      console.log(
        JSON.stringify({
          suite: "llava_other_seeds",
          world,
          model: row(metrics),
          blind: row(baselines.blind),
          majority: row(baselines.majority),
        }),
      );
    }
  } finally {
    llava.model.dispose();
    blind.model.dispose();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
