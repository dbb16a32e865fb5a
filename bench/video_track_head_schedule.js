/**
 * Lab 03 diagnostic (docs/lab03-plan.md, "Eighth round"): does stage T of `npm run pretrain -- videollama` read the
 * objects' first direction better with more steps, another learning rate or more training clips? It builds the
 * committed plan's model (the nano bridges with the track head and its code words, seed 0) between the frozen
 * backbones, caches the frame features of the stored train split and FRESH clips drawn fresh (seed 17, as the
 * pretraining draws them), runs stage T alone (`trainTrackHead`, batch 32, seed 30) for STEPS steps at peak learning
 * rate LR with AdamW's weight decay WEIGHT_DECAY (default 0, the plan's), and scores the head on 300 held-out clips (seed 4242) with `trackHeadAccuracy`: first direction over all
 * objects and by one- and two-object clips, position error, and the same head shown the frames shuffled. Stage T is
 * the direction the frozen LLM reads through the code tokens, so its held-out accuracy bounds the answers'.
 * It reads the built library (`npm run build` first).
 *
 * `node bench/video_track_head_schedule.js STEPS LR [FRESH] [WEIGHT_DECAY]` (FRESH default 6000, the plan's); the last line is
 * `RESULT {json}`. About 3 minutes of features per 6,000 clips and 0.08 s a step on 2 cores.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));

void (async () => {
  const [steps, learningRate, fresh, weightDecay] = [
    process.argv[2],
    process.argv[3],
    process.argv[4] ?? "6000",
    process.argv[5] ?? "0",
  ].map(Number);
  if (!(Number.isInteger(steps) && steps > 0 && learningRate > 0 && Number.isInteger(fresh) && fresh > 0 && weightDecay >= 0))
    throw new Error(
      `usage: node bench/video_track_head_schedule.js STEPS LR [FRESH] [WEIGHT_DECAY] (whole steps > 0, LR > 0, FRESH clips > 0, WEIGHT_DECAY ≥ 0), got ${JSON.stringify(process.argv.slice(2))}`,
    );
  await dist("engine/init").initEngine({ backend: "native", verbose: false });
  const m = dist("index");
  const checkpoints = path.join(root, "data/checkpoints");
  const world = path.join(root, "data/world");
  const tokenizer = m.loadTokenizer(path.join(world, "tokenizer"));
  const language = m.loadLlama(path.join(checkpoints, "language"));
  const audio = m.loadAudioEncoder(path.join(checkpoints, "audio"));
  const vision = m.loadCLIPVision(path.join(checkpoints, "vision"));
  const model = m.videoLlamaForPlan(m.VIDEOLLAMA_PLAN, { vision, audio, language }, tokenizer, 0); // as the pretraining builds it
  const featuresStarted = Date.now();
  const clips = m.joinClipSets(
    await m.storedClipSet(model, world, "train", m.VIDEOLLAMA_PLAN.storedTrainClips),
    await m.freshClipSet(model, fresh, 17, { sound: false }),
  );
  const heldOut = await m.freshClipSet(model, 300, 4242, { sound: false });
  const featureSeconds = (Date.now() - featuresStarted) / 1000;
  try {
    const started = Date.now();
    const losses = await m.trainTrackHead(model, clips, {
      steps,
      learningRate,
      batchSize: 32,
      seed: 30,
      weightDecay,
      log: () => {},
    });
    const seconds = (Date.now() - started) / 1000;
    const inOrder = await m.trackHeadAccuracy(model, heldOut, {});
    const shuffled = await m.trackHeadAccuracy(model, heldOut, { frames: "shuffled" });
    const last = losses.slice(-200);
    console.log(
      `RESULT ${JSON.stringify({
        suite: "video_track_head_schedule",
        steps,
        learningRate,
        fresh,
        weightDecay,
        featureSeconds,
        seconds,
        finalLoss: last.reduce((sum, x) => sum + x, 0) / last.length, // mean of the last 200 steps' set loss
        inOrder,
        shuffledDirection: shuffled.direction,
      })}`,
    );
  } finally {
    m.disposeClipSet(clips);
    m.disposeClipSet(heldOut);
    model.dispose();
  }
  dist("engine/init").closeEngine();
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
