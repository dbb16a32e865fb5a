/**
 * Lab 03 diagnostic (docs/lab03-plan.md, "Eighth round"): where the committed `videollama` checkpoint's track head
 * loses the objects' first direction. On 300 held-out clips (seed 4242, as bench/video_track_head_schedule.js scores
 * them), each slot matched to an object by where and when it is (the head's set-loss assignment, as
 * `trackHeadAccuracy` does), by group of objects: alone in its clip, one of two visible from the first frame, one of
 * two that appears part way. Per group:
 * - **head**: the head's direction (argmax of its direction logits), what the code tokens hand the frozen LLM;
 * - **from its predicted positions**: the larger axis and sign of the slot's predicted displacement over the object's
 *   first three visible frames;
 * - **label vs what is seen**: the same rule on the true positions over the first two visible frames, against the
 *   label. The label is the direction the object is launched with at frame 0 (`sampleVideo`), which an object that
 *   appears part way may have reversed off a wall before it is seen.
 * It reads the built library (`npm run build` first). `node bench/video_track_head_direction.js`; the last line is
 * `RESULT {json}`.
 */
"use strict";
const path = require("path");
const root = path.join(__dirname, "..");
const dist = (f) => require(path.join(root, "dist/src", f));
const tf = require("@tensorflow/tfjs");

/** Direction class (left, right, up, down: `DIRECTIONS`' order) of the displacement between two positions. */
const directionOf = ([x0, y0], [x1, y1]) => {
  const [dx, dy] = [x1 - x0, y1 - y0];
  if (Math.abs(dx) >= Math.abs(dy)) return dx < 0 ? 0 : 1;
  return dy < 0 ? 2 : 3;
};

void (async () => {
  await dist("engine/init").initEngine({ backend: "native", verbose: false });
  const { loadVideoLlama, freshClipSet, disposeClipSet } = dist("pretrain/videollama");
  const { trackTargetArrays, gatherTrackTargets, disposeTrackTargets } = dist("data/video_tracks");
  const { slotPermutations } = dist("models/video_track_head");
  const { DIRECTIONS } = dist("data/video");
  if (Object.keys(DIRECTIONS).join() !== "left,right,up,down")
    throw new Error(`video_track_head_direction: expected the directions left, right, up, down, got ${Object.keys(DIRECTIONS)}`);
  const loaded = loadVideoLlama(path.join(root, "data/checkpoints/videollama"));
  const { model } = loaded;
  const head = model.videoTrackHead;
  const set = await freshClipSet(model, 300, 4242, { sound: false });
  const { slots: S, frames: F } = head.config;
  const targets = trackTargetArrays(set.tracks, { slots: S, frames: F, canvas: set.trackCanvas });
  const permutations = slotPermutations(S);
  const groups = {}; // group → { objects, head, fromPredictedPositions, labelSeen }
  const tally = (group, key, ok) => {
    groups[group] = groups[group] ?? { objects: 0, head: 0, fromPredictedPositions: 0, labelSeen: 0 };
    if (key === "head") groups[group].objects++;
    groups[group][key] += ok ? 1 : 0;
  };
  try {
    for (let start = 0; start < set.tracks.length; start += 50) {
      const rows = [...Array(Math.min(50, set.tracks.length - start)).keys()].map((k) => start + k);
      const frames = tf.gather(set.frames, rows); // [B, F, K, D]
      const batch = gatherTrackTargets(targets, rows);
      let values;
      try {
        const outputs = tf.tidy(() => {
          const predicted = head.predict(model.videoPrompt(frames).queryOutput);
          return [predicted.attributes[0].argMax(2), predicted.position, head.setLoss(predicted, batch).assignment];
        });
        values = await Promise.all(outputs.map((t) => t.data()));
        tf.dispose(outputs);
      } finally {
        frames.dispose();
        disposeTrackTargets(batch);
      }
      const [guess, where, chosen] = values;
      rows.forEach((row, b) => {
        const permutation = permutations[chosen[b]]; // object permutation[s] sits in slot s
        const count = set.tracks[row].length;
        permutation.forEach((object, slot) => {
          const j = row * S + object;
          if (!targets.exists[j]) return;
          const label = targets.attributes[0][j];
          const seen = [...Array(F).keys()].filter((f) => targets.visible[j * F + f]);
          const group = count === 1 ? "one object" : seen[0] === 0 ? "two, from the start" : "two, appears part way";
          const predicted = (f) => [where[((b * S + slot) * F + f) * 2], where[((b * S + slot) * F + f) * 2 + 1]];
          const truth = (f) => [targets.position[(j * F + f) * 2], targets.position[(j * F + f) * 2 + 1]];
          tally(group, "head", guess[b * S + slot] === label);
          tally(
            group,
            "fromPredictedPositions",
            directionOf(predicted(seen[0]), predicted(seen[Math.min(3, seen.length - 1)])) === label,
          );
          tally(group, "labelSeen", directionOf(truth(seen[0]), truth(seen[1])) === label);
        });
      });
    }
    const rate = (x, n) => Number((x / n).toFixed(3));
    const result = Object.fromEntries(
      Object.entries(groups).map(([group, g]) => [
        group,
        {
          objects: g.objects,
          head: rate(g.head, g.objects),
          fromPredictedPositions: rate(g.fromPredictedPositions, g.objects),
          labelSeen: rate(g.labelSeen, g.objects),
        },
      ]),
    );
    for (const [group, r] of Object.entries(result))
      console.log(
        `${group.padEnd(24)} ${String(r.objects).padStart(4)} objects: head ${r.head}, from its predicted positions ${r.fromPredictedPositions}, label = first motion seen ${r.labelSeen}`,
      );
    console.log(`RESULT ${JSON.stringify({ suite: "video_track_head_direction", groups: result })}`);
  } finally {
    disposeClipSet(set);
    loaded.dispose();
    dist("engine/init").closeEngine();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
