/**
 * Issue 17's targets on worlds generated with other seeds (docs/lab03-plan.md, "Other seeds"): the committed
 * `videollama` checkpoint is evaluated as `mllm-labs eval` does (`evaluateVideoLlama`), but with the world's seed as
 * the eval's seed, so that every clip it asks about is new: the world's stored test split and audio test events, and the
 * fresh test clips (seed + 27), audio-visual clips (seed + 28) and order clips (seed + 31), and the shuffled order
 * (seed + 11). `mllm-labs eval --data DIR` changes only the stored split, which is a small part of the questions.
 * Captions are skipped (no target). One JSON line per world: for direction, order and audio-visual, the model, the
 * baselines the targets name, the margins and the sampling error of each margin (two independent binomial errors,
 * sqrt(p(1−p)/n + q(1−q)/n), an upper bound for the paired difference). It reads the built library (`npm run build`
 * first).
 *
 * `npm run data -- --seed 5 --sets videos,audio --out /tmp/world5`, then
 * `node bench/videollama_other_seeds.js 5 /tmp/world5 [6 /tmp/world6 …]` (about 5 minutes per world on 2 cores).
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

const TARGETS = [
  // metric, the baselines it must beat, by how much (issue 17)
  ["video_qa_direction", ["single_middle_frame", "shuffled_frames"], 0.2],
  ["video_qa_order", ["single_middle_frame", "shuffled_frames"], 0.2],
  ["audio_visual", ["video_only"], 0.3],
];

void (async () => {
  const args = process.argv.slice(2);
  if (args.length === 0 || args.length % 2 !== 0 || args.some((a, k) => k % 2 === 0 && !/^\d+$/.test(a)))
    throw new Error(
      `usage: node bench/videollama_other_seeds.js SEED WORLD_DIR [SEED WORLD_DIR …] (worlds made by npm run data -- --seed SEED --sets videos,audio --out WORLD_DIR), got ${JSON.stringify(args)}`,
    );
  await dist("engine/init").initEngine({ backend: "native", verbose: false });
  const { loadVideoLlama, evaluateVideoLlama } = dist("pretrain/videollama");
  const loaded = loadVideoLlama(path.join(root, "data/checkpoints/videollama"));
  const round = (x) => Number(x.toFixed(3));
  try {
    for (let k = 0; k < args.length; k += 2) {
      const seed = Number(args[k]);
      const world = args[k + 1];
      const started = Date.now();
      const { metrics, baselines, counts } = await evaluateVideoLlama(loaded, world, { seed, skipCaptions: true });
      const targets = TARGETS.map(([metric, against, margin]) => {
        const n = counts[metric];
        const p = metrics[metric];
        const error = (q) => Math.sqrt((p * (1 - p)) / n + (q * (1 - q)) / n);
        return {
          metric,
          questions: n,
          model: round(p),
          margins: Object.fromEntries(
            against.map((name) => {
              const q = baselines[name][metric];
              return [name, { baseline: round(q), margin: round(p - q), error: round(error(q)), met: p - q >= margin }];
            }),
          ),
          target: margin,
        };
      });
      console.log(
        JSON.stringify({
          suite: "videollama_other_seeds",
          seed,
          world,
          seconds: Math.round((Date.now() - started) / 1000),
          targets,
          metrics: Object.fromEntries(Object.entries(metrics).map(([key, value]) => [key, round(value)])),
          counts,
        }),
      );
    }
  } finally {
    loaded.dispose();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
