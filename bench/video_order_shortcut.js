/**
 * Lab 03 diagnostic (docs/lab03-plan.md, "Sixth round"): how much of the derived order questions ("which is there
 * first / leaves first / bounces first, the A or the B?", `orderQuestions`) a reader answers that never sees the
 * frames' order. It is given, per object, only what a shuffled bag of frames still shows: in how many frames the object
 * is visible, and whether it bounces while visible. "There first" → the object visible in more frames, "leaves first"
 * → in fewer, "bounces first" → the one that bounces when only one does; a tie is a coin flip (scored ½). The bounce is
 * taken from the annotation, generously: a bag of frames may show an object at a wall, not when. Its accuracy is what a
 * model reaches from shuffled frames if it reads them this well, and so what is left for the frames' order to add.
 *
 * `node bench/video_order_shortcut.js [CLIPS=5000] [SEED=27]` (fresh clips of the world's generator). Last line
 * `RESULT {json}`: per kind of question, the reader's accuracy and count, and over all of them.
 */
"use strict";
const path = require("path");
const dist = (file) => require(path.join(__dirname, "../dist/src", file));
const { sampleVideo } = dist("data/video");
const { orderQuestions } = dist("data/video_questions");
const { objectName } = dist("data/captions");
const { Random } = dist("util/random");

const [clips = "5000", seed = "27"] = process.argv.slice(2);
const FRAMES = 12;
const random = new Random(Number(seed));
const visibleFrames = (track) => track.disappearAt - track.appearAt;
const bouncesWhileVisible = (track) => track.bounces.some((f) => f >= track.appearAt && f < track.disappearAt);
/** The order-blind reader's answer, or null for a coin flip. */
function orderBlindAnswer(kind, [a, b]) {
  const pick = (first) => objectName(first.object);
  if (kind === "which is there first")
    return visibleFrames(a) === visibleFrames(b) ? null : pick(visibleFrames(a) > visibleFrames(b) ? a : b);
  if (kind === "which leaves first")
    return visibleFrames(a) === visibleFrames(b) ? null : pick(visibleFrames(a) < visibleFrames(b) ? a : b);
  if (kind !== "which bounces first")
    throw new Error(`video_order_shortcut: an order question of an unknown kind: ${JSON.stringify(kind)}`);
  return bouncesWhileVisible(a) === bouncesWhileVisible(b) ? null : pick(bouncesWhileVisible(a) ? a : b);
}
const tally = {};
for (let n = 0; n < Number(clips); n++) {
  const clip = sampleVideo(random, FRAMES);
  for (const q of orderQuestions(clip.tracks, FRAMES)) {
    const kind = q.question.slice(0, q.question.indexOf(","));
    const guess = orderBlindAnswer(kind, clip.tracks);
    const t = (tally[kind] ??= { right: 0, questions: 0 });
    t.questions++;
    t.right += guess === null ? 0.5 : guess === q.answer ? 1 : 0;
  }
}
const all = Object.values(tally).reduce((s, t) => ({ right: s.right + t.right, questions: s.questions + t.questions }), {
  right: 0,
  questions: 0,
});
const result = Object.fromEntries(
  [...Object.entries(tally), ["all", all]].map(([kind, t]) => [
    kind,
    { accuracy: +(t.right / t.questions).toFixed(3), questions: t.questions },
  ]),
);
for (const [kind, r] of Object.entries(result)) console.log(`${kind}: ${r.accuracy} of ${r.questions}`);
console.log("RESULT", JSON.stringify({ clips: Number(clips), seed: Number(seed), ...result }));
