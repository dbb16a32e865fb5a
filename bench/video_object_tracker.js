/**
 * Lab 03: the object tracker (src/models/video_object_tracker.ts) trained alone on fresh clips' exact tracks, then
 * scored on held-out clips with the frames in order, shuffled and the middle frame repeated: every object's first
 * direction read from its identity's track (one- and two-object clips apart), whether its identity is among the two
 * the tracker finds likeliest present (the code tokens' slots; per object, and per two-object clip both), and the
 * position error. The same held-out clips and scoring as `bench/video_track_head_direction.js` reads the committed
 * track head with.
 *
 * `node bench/video_object_tracker.js [TRAIN_CLIPS=6000] [STEPS=2000] [LR=1e-3] [EVAL_CLIPS=300] [WINDOW=3] [HIDDEN=128]
 * [POOL=1] [BATCH=8]`: POOL is the tower's patch grid pooling the tracker reads (1: every patch, the 8×8 grid; 2: the
 * 4×4 grid the video Q-Former reads), BATCH the clips per step. The defaults are docs/lab03-plan.md's T7 row
 * ("Eleventh round");
 * training clips seed 501, held-out clips seed 4242, shuffled orders seed 11. Last line `RESULT {json}`.
 */
"use strict";
const path = require("path");
const tf = require("@tensorflow/tfjs");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { initEngine } = dist("engine/init");
const { loadVideoLlama, freshClipSet, disposeClipSet } = dist("pretrain/videollama");
const { learningRateAt } = dist("pretrain/common");
const { VideoObjectTracker } = dist("models/video_object_tracker");
const { identityTargetArrays, gatherIdentityTargets, trackIdentity } = dist("data/video_tracks");
const { AdamW } = dist("train/adamw");
const { Random } = dist("util/random");
const { shuffledFrameOrder, singleMiddleFrame } = dist("data/temporal_sampling");

const [
  trainClips = "6000",
  steps = "2000",
  lr = "1e-3",
  evalClips = "300",
  window = "3",
  hidden = "128",
  pool = "1",
  batchSize = "8",
] = process.argv.slice(2);

const disposeTargets = (t) => tf.dispose([t.visible, t.position, t.present, ...t.motion]);

void (async () => {
  await initEngine({ backend: "native", verbose: false });
  const loaded = loadVideoLlama(path.join(__dirname, "../data/checkpoints/videollama"));
  const model = loaded.model;
  // The tracker reads the tower's whole patch grid pooled `pool` × `pool` (1: every patch), whatever the checkpoint's pooling.
  const { imageSize: S, patchSize } = model.config.vision;
  const G = S / patchSize;
  const P = Number(pool);
  const pooled = (tokens) =>
    P === 1
      ? tokens.clone()
      : tf.tidy(() => {
          const [M, F, , Dv] = tokens.shape;
          const rows = tokens.reshape([M * F, 1 + G * G, Dv]);
          const classToken = rows.slice([0, 0, 0], [M * F, 1, Dv]);
          const grid = rows.slice([0, 1, 0], [M * F, G * G, Dv]).reshape([M * F, G, G, Dv]);
          const patches = tf.avgPool(grid, P, P, "valid").reshape([M * F, (G / P) ** 2, Dv]);
          return tf.concat([classToken, patches], 1).reshape([M, F, 1 + (G / P) ** 2, Dv]);
        });
  let started = Date.now();
  const train = await freshClipSet(model, Number(trainClips), 501, { sound: false, keepFrameTokens: true });
  const held = await freshClipSet(model, Number(evalClips), 4242, { sound: false, keepFrameTokens: true });
  const trainGrid = pooled(train.frameTokens);
  const heldGrid = pooled(held.frameTokens);
  console.log(`features ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const [N, F, K, D] = trainGrid.shape;
  const tracker = new VideoObjectTracker(
    { frames: F, window: Number(window), hiddenSize: Number(hidden) },
    { visionWidth: D, seed: 7 },
  );
  const targets = identityTargetArrays(train.tracks, { frames: F, canvas: train.trackCanvas });
  const flat = trainGrid.reshape([N * F, K, D]);
  const random = new Random(3);
  const optimizer = new AdamW({ learningRate: Number(lr), weightDecay: 0 });
  const variables = tracker.trainableParameters();
  started = Date.now();
  const totalSteps = Number(steps);
  let running = null;
  for (let step = 0; step < totalSteps; step++) {
    const picked = Array.from({ length: Number(batchSize) }, () => random.int(0, N));
    const frames = tf.tidy(() =>
      tf
        .gather(
          flat,
          picked.flatMap((n) => [...Array(F).keys()].map((f) => n * F + f)),
        )
        .reshape([picked.length, F, K, D]),
    );
    const batch = gatherIdentityTargets(targets, picked);
    optimizer.learningRate = learningRateAt(step, totalSteps, Number(lr), Math.min(50, Math.ceil(totalSteps / 10)));
    const parts = [];
    const loss = optimizer.minimize(() => {
      const l = tracker.loss(tracker.track(frames), batch);
      parts.push(...[l.detection, l.position, l.motion].map((t) => tf.keep(t)));
      return l.total;
    }, variables);
    const values = await Promise.all([loss, ...parts].map((t) => t.data()));
    tf.dispose([loss, ...parts, frames]);
    disposeTargets(batch);
    const now = values.map((v) => v[0]);
    running = running ? running.map((r, k) => 0.98 * r + 0.02 * now[k]) : now;
    if ((step + 1) % 250 === 0)
      console.log(
        `step ${step + 1}: loss ${running.map((v) => v.toFixed(4)).join(" / ")} (total / detection / position / motion), ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
  }
  optimizer.dispose();
  flat.dispose();
  trainGrid.dispose();
  disposeClipSet(train);

  const heldTargets = identityTargetArrays(held.tracks, { frames: F, canvas: held.trackCanvas });
  const result = {
    trainClips: N,
    steps: totalSteps,
    lr: Number(lr),
    window: Number(window),
    hidden: Number(hidden),
    pool: Number(pool),
    batchSize: Number(batchSize),
    trainSeconds: Math.round((Date.now() - started) / 1000),
  };
  const identity = [...Array(F).keys()];
  for (const view of ["all", "shuffled", "middle"]) {
    const orderRandom = new Random(11);
    const orders = held.tracks.map(() =>
      view === "all" ? identity : view === "shuffled" ? shuffledFrameOrder(identity, orderRandom) : singleMiddleFrame(identity),
    );
    const tallies = { 1: [0, 0], 2: [0, 0] };
    const selectedBy = { 1: 0, 2: 0 };
    const whenSelected = [0, 0];
    let selected = 0;
    let selectedByPeak = 0;
    let twoObjectClips = 0;
    let bothFound = 0;
    let objects = 0;
    let distance = 0;
    let seenFrames = 0;
    const M = heldGrid.shape[0];
    const heldFlat = heldGrid.reshape([M * F, K, D]);
    for (let start = 0; start < M; start += 50) {
      const picked = [...Array(Math.min(50, M - start)).keys()].map((k) => start + k);
      const frames = tf.tidy(() =>
        tf
          .gather(
            heldFlat,
            picked.flatMap((n) => orders[n].map((f) => n * F + f)),
          )
          .reshape([picked.length, F, K, D]),
      );
      const out = tf.tidy(() => {
        const t = tracker.track(frames);
        return [t.motion[0].argMax(2), t.visibility.sigmoid().mean(2), t.position, t.visibility.sigmoid().max(2)];
      });
      const [direction, presence, position, peak] = await Promise.all(out.map((x) => x.data()));
      tf.dispose([...out, frames]);
      const I = tracker.identities;
      picked.forEach((n, b) => {
        const tracks = held.tracks[n];
        const ranked = [...Array(I).keys()].sort((p, q) => presence[b * I + q] - presence[b * I + p]).slice(0, 2);
        const rankedByPeak = [...Array(I).keys()].sort((p, q) => peak[b * I + q] - peak[b * I + p]).slice(0, 2);
        if (tracks.length === 2) {
          twoObjectClips++;
          if (tracks.every((track) => ranked.includes(trackIdentity(track)))) bothFound++;
        }
        for (let i = 0; i < I; i++) {
          if (!heldTargets.present[n * I + i]) continue;
          const ok = direction[b * I + i] === heldTargets.motion[0][n * I + i] ? 1 : 0;
          tallies[tracks.length][0] += ok;
          tallies[tracks.length][1] += 1;
          objects++;
          if (rankedByPeak.includes(i)) selectedByPeak++;
          if (ranked.includes(i)) {
            selected++;
            selectedBy[tracks.length]++;
            whenSelected[0] += ok;
            whenSelected[1]++;
          }
          for (let f = 0; f < F; f++) {
            if (!heldTargets.visible[(n * I + i) * F + f]) continue;
            // the truth in the view's frame order
            const g = orders[n][f];
            if (!heldTargets.visible[(n * I + i) * F + g]) continue;
            const dx = position[((b * I + i) * F + f) * 2] - heldTargets.position[((n * I + i) * F + g) * 2];
            const dy = position[((b * I + i) * F + f) * 2 + 1] - heldTargets.position[((n * I + i) * F + g) * 2 + 1];
            distance += Math.hypot(dx, dy) * (held.trackCanvas / 2);
            seenFrames++;
          }
        }
      });
    }
    heldFlat.dispose();
    result[view] = {
      direction: +((tallies[1][0] + tallies[2][0]) / objects).toFixed(3),
      oneObject: +(tallies[1][0] / tallies[1][1]).toFixed(3),
      twoObjects: +(tallies[2][0] / tallies[2][1]).toFixed(3),
      inTopTwo: +(selected / objects).toFixed(3),
      inTopTwoOneObject: +(selectedBy[1] / tallies[1][1]).toFixed(3),
      inTopTwoTwoObjects: +(selectedBy[2] / tallies[2][1]).toFixed(3),
      bothInTopTwo: +(bothFound / twoObjectClips).toFixed(3),
      inTopTwoByPeak: +(selectedByPeak / objects).toFixed(3),
      directionWhenInTopTwo: +(whenSelected[0] / whenSelected[1]).toFixed(3),
      positionErrorPx: +(distance / Math.max(1, seenFrames)).toFixed(2),
      objects,
    };
    console.log(view, JSON.stringify(result[view]));
  }
  heldGrid.dispose();
  disposeClipSet(held);
  tracker.dispose();
  loaded.dispose();
  console.log("RESULT", JSON.stringify(result));
})();
