/**
 * Lab 03: how well a VideoLLaMA checkpoint's track head reads held-out generated clips (docs/lab03-plan.md), with the
 * frames in order, shuffled and the middle frame repeated: the direction of every object (one- and two-object clips)
 * and the position error, each slot matched to an object by positions and visibility (`trackHeadAccuracy`).
 *
 * `node bench/video_llama_head.js [CHECKPOINT=data/checkpoints/videollama] [CLIPS=300] [SEED=27]`; the clips are drawn
 * with SEED (27 = the seed the eval's fresh test clips use for a checkpoint trained with seed 0). Last line `RESULT {json}`.
 */
"use strict";
const path = require("path");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { loadVideoLlama, freshClipSet, disposeClipSet, trackHeadAccuracy } = dist("pretrain/videollama");

const [directory = path.join(__dirname, "../data/checkpoints/videollama"), clips = "300", seed = "27"] = process.argv.slice(2);
void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const loaded = loadVideoLlama(directory);
  const set = await freshClipSet(loaded.model, Number(clips), Number(seed), { sound: false });
  const result = {};
  for (const frames of ["all", "shuffled", "middle"]) {
    const accuracy = await trackHeadAccuracy(loaded.model, set, { frames });
    result[frames] = Object.fromEntries(Object.entries(accuracy).map(([k, v]) => [k, +v.toFixed(3)]));
    console.log(frames, JSON.stringify(result[frames]));
  }
  disposeClipSet(set);
  loaded.dispose();
  console.log("RESULT", JSON.stringify({ checkpoint: directory, clips: Number(clips), seed: Number(seed), ...result }));
})();
